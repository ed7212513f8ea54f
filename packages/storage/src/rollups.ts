import type { ClickHouseClient } from '@clickhouse/client';
import { IngestError, ingestError, type CountBucket, type MetricBucket, type RollupPage } from '@ingest/contracts';
import { clearFailedStatement } from './ops.ts';
import { Where, boundError, boundSettings, type EntryQuery, type QueryBounds, type Rollup } from './query.ts';
import { TABLES } from './store.ts';

export const ROLLUP_TABLES = {
  dirty: 'telemetry_rollup_dirty',
  counts: 'telemetry_counts_1m',
  metrics: 'telemetry_metrics_1m',
  state: 'telemetry_rollup_state',
} as const;

/** A label set as one value whatever order its producer wrote the keys in (mapSort is newer than our minimum server). */
const SORTED_LABELS = `CAST((arraySort(mapKeys(labels)), arraySort((v, k) -> k, mapValues(labels), mapKeys(labels))), 'Map(String, String)')`;

/** The (tenant, minute) pairs to compute, sent as two parallel arrays (tuple parameters are newer than our minimum server). */
const BUCKETS = `SELECT tupleElement(b, 1) AS tenant_id, toDateTime(tupleElement(b, 2), 'UTC') AS minute FROM (SELECT arrayJoin(arrayZip({bt:Array(String)}, {bm:Array(UInt32)})) AS b)`;

/** The most buckets one statement names: their parameters travel in the request's URL to a server. */
export const MAX_BUCKETS_PER_STATEMENT = 2_000;

export interface MarkedBucket {
  tenant: string;
  /** The minute's start, epoch seconds. */
  minute: number;
  /** Marker rows of the bucket in the window read: it changes when an insert into the minute became visible. */
  markers: number;
  lastMarkMs: number;
}

/**
 * Buckets with markers in (loMs, hiMs], the least recently marked first, at most `limit`, after
 * `after` in that order (a page's last bucket: markDay gives a whole day one marker time).
 */
export async function markedBuckets(client: ClickHouseClient, loMs: number, hiMs: number, limit: number, after?: MarkedBucket): Promise<MarkedBucket[]> {
  const page = after ? 'HAVING (last, tenant_id, m) > ({al:Int64}, {at:String}, {am:UInt32})' : '';
  const rs = await client.query({
    query: `SELECT tenant_id, toUnixTimestamp(minute) AS m, count() AS n, toUnixTimestamp64Milli(max(marked_at)) AS last
      FROM ${ROLLUP_TABLES.dirty} WHERE marked_at > fromUnixTimestamp64Milli({lo:Int64}) AND marked_at <= fromUnixTimestamp64Milli({hi:Int64})
      GROUP BY tenant_id, minute ${page} ORDER BY last, tenant_id, m LIMIT {limit:UInt32}`,
    query_params: { lo: loMs, hi: hiMs, limit, ...(after ? { al: after.lastMarkMs, at: after.tenant, am: after.minute } : {}) },
    format: 'JSONEachRow',
  });
  return (await rs.json<{ tenant_id: string; m: number | string; n: number | string; last: number | string }>()).map((r) => ({ tenant: r.tenant_id, minute: Number(r.m), markers: Number(r.n), lastMarkMs: Number(r.last) }));
}

/** Recomputes every bucket marked in (loMs, hiMs]: for tests and operators; the refresher picks its own. */
export async function recomputeMarked(client: ClickHouseClient, loMs: number, hiMs: number): Promise<void> {
  let after: MarkedBucket | undefined;
  for (;;) {
    const page = await markedBuckets(client, loMs, hiMs, MAX_BUCKETS_PER_STATEMENT, after);
    await recomputeBuckets(client, page);
    after = page[page.length - 1];
    if (page.length < MAX_BUCKETS_PER_STATEMENT || !after) return;
  }
}

/**
 * Recomputes the given (tenant, minute) buckets from `telemetry FINAL`: both rollups, and a zero
 * for each key a bucket held before that live no longer has (a promote or a delete took it away).
 * Zeros go first, fresh counts after; with equal computed_at the later insert wins. Idempotent:
 * two refreshers computing the same minutes write the same numbers.
 */
export async function recomputeBuckets(client: ClickHouseClient, buckets: ReadonlyArray<Pick<MarkedBucket, 'tenant' | 'minute'>>): Promise<void> {
  for (let i = 0; i < buckets.length; i += MAX_BUCKETS_PER_STATEMENT) {
    const part = buckets.slice(i, i + MAX_BUCKETS_PER_STATEMENT);
    await recomputePart(client, { bt: part.map((b) => b.tenant), bm: part.map((b) => b.minute) });
  }
}

async function recomputePart(client: ClickHouseClient, params: { bt: string[]; bm: number[] }): Promise<void> {
  const liveCounts = `SELECT tenant_id, toStartOfMinute(ts) AS minute, type, app, level, count() AS n FROM ${TABLES.live} FINAL
    WHERE (tenant_id, toStartOfMinute(ts)) IN (${BUCKETS}) GROUP BY tenant_id, minute, type, app, level`;
  await client.command({
    query: `INSERT INTO ${ROLLUP_TABLES.counts} (tenant_id, minute, type, app, level, count, computed_at)
      SELECT tenant_id, minute, type, app, level, 0, now64(3) FROM ${ROLLUP_TABLES.counts} FINAL
      WHERE (tenant_id, minute) IN (${BUCKETS}) AND count > 0
        AND (tenant_id, minute, type, app, level) NOT IN (SELECT tenant_id, minute, type, app, level FROM (${liveCounts}))`,
    query_params: params,
  });
  await client.command({
    query: `INSERT INTO ${ROLLUP_TABLES.counts} (tenant_id, minute, type, app, level, count, computed_at)
      SELECT tenant_id, minute, type, app, level, n, now64(3) FROM (${liveCounts})`,
    query_params: params,
  });
  const liveMetrics = `SELECT tenant_id, toStartOfMinute(ts) AS minute, name, ${SORTED_LABELS} AS sorted, cityHash64(sorted) AS h, app,
      count() AS n, sum(assumeNotNull(value)) AS s, min(assumeNotNull(value)) AS lo_v, max(assumeNotNull(value)) AS hi_v
    FROM ${TABLES.live} FINAL
    WHERE type = 'metric' AND value IS NOT NULL AND (tenant_id, toStartOfMinute(ts)) IN (${BUCKETS})
    GROUP BY tenant_id, minute, name, sorted, app`;
  await client.command({
    query: `INSERT INTO ${ROLLUP_TABLES.metrics} (tenant_id, minute, name, labels_hash, app, labels, count, sum, min, max, computed_at)
      SELECT tenant_id, minute, name, labels_hash, app, labels, 0, 0, 0, 0, now64(3) FROM ${ROLLUP_TABLES.metrics} FINAL
      WHERE (tenant_id, minute) IN (${BUCKETS}) AND count > 0
        AND (tenant_id, minute, name, labels_hash, app) NOT IN (SELECT tenant_id, minute, name, h, app FROM (${liveMetrics}))`,
    query_params: params,
  });
  await client.command({
    query: `INSERT INTO ${ROLLUP_TABLES.metrics} (tenant_id, minute, name, labels_hash, app, labels, count, sum, min, max, computed_at)
      SELECT tenant_id, minute, name, h, app, sorted, n, s, lo_v, hi_v, now64(3) FROM (${liveMetrics})`,
    query_params: params,
  });
}

/**
 * Marks the minutes of one day partition of live for recomputing: those live holds now and those
 * the rollups hold (which may be gone from live). For what the view cannot see: REPLACE PARTITION.
 */
export async function markDay(client: ClickHouseClient, day: number): Promise<void> {
  await markWhere(client, 'toYYYYMMDD(ts) = {day:UInt32}', 'toYYYYMMDD(minute) = {day:UInt32}', { day });
}

/** The same for a window of event time [fromMs, toMs) of one tenant: for ALTER … DELETE. */
export async function markWindow(client: ClickHouseClient, tenant: string, fromMs: number, toMs: number): Promise<void> {
  await markWhere(
    client,
    'tenant_id = {tenant:String} AND ts >= fromUnixTimestamp64Milli({from:Int64}) AND ts < fromUnixTimestamp64Milli({to:Int64})',
    'tenant_id = {tenant:String} AND minute >= toStartOfMinute(fromUnixTimestamp64Milli({from:Int64})) AND minute < fromUnixTimestamp64Milli({to:Int64})',
    { tenant, from: fromMs, to: toMs },
  );
}

async function markWhere(client: ClickHouseClient, liveWhere: string, rollupWhere: string, params: Record<string, unknown>): Promise<void> {
  await client.command({
    query: `INSERT INTO ${ROLLUP_TABLES.dirty} (tenant_id, minute, marked_at)
      SELECT tenant_id, minute, now64(3) FROM (
        SELECT DISTINCT tenant_id, toStartOfMinute(ts) AS minute FROM ${TABLES.live} WHERE ${liveWhere}
        UNION DISTINCT SELECT DISTINCT tenant_id, minute FROM ${ROLLUP_TABLES.counts} WHERE ${rollupWhere}
        UNION DISTINCT SELECT DISTINCT tenant_id, minute FROM ${ROLLUP_TABLES.metrics} WHERE ${rollupWhere}
      )`,
    query_params: params,
  });
}

/** The refresher's progress as stored, or undefined before its first cycle. */
export async function readWatermark(client: ClickHouseClient): Promise<number | undefined> {
  const rs = await client.query({
    query: `SELECT toUnixTimestamp64Milli(max(watermark)) AS w, count() AS n FROM ${ROLLUP_TABLES.state} WHERE name = 'rollup'`,
    format: 'JSONEachRow',
  });
  const [row] = await rs.json<{ w: string | number; n: string | number }>();
  return row && Number(row.n) > 0 ? Number(row.w) : undefined;
}

export async function writeWatermark(client: ClickHouseClient, ms: number): Promise<void> {
  await client.command({
    query: `INSERT INTO ${ROLLUP_TABLES.state} (name, watermark) VALUES ('rollup', fromUnixTimestamp64Milli({w:Int64}))`,
    query_params: { w: ms },
  });
}

/** The store's clock (markers carry it), and the first marker after `afterMs`, if any. */
export async function markerClock(client: ClickHouseClient, afterMs: number): Promise<{ nowMs: number; firstMarkMs: number | undefined }> {
  const rs = await client.query({
    query: `SELECT toUnixTimestamp64Milli(now64(3)) AS now_ms,
              (SELECT toUnixTimestamp64Milli(min(marked_at)) FROM ${ROLLUP_TABLES.dirty} WHERE marked_at > fromUnixTimestamp64Milli({after:Int64})) AS first_ms,
              (SELECT count() FROM ${ROLLUP_TABLES.dirty} WHERE marked_at > fromUnixTimestamp64Milli({after:Int64})) AS n`,
    query_params: { after: afterMs },
    format: 'JSONEachRow',
  });
  const [row] = await rs.json<{ now_ms: string | number; first_ms: string | number; n: string | number }>();
  if (!row) throw new Error('the store answered no row for its clock');
  return { nowMs: Number(row.now_ms), firstMarkMs: Number(row.n) > 0 ? Number(row.first_ms) : undefined };
}

interface RawCount {
  t: string | number;
  type: string;
  app: string;
  level: string;
  n: string | number;
}

interface RawMetric {
  t: string | number;
  name: string;
  app: string;
  label_set: Record<string, string>;
  n: string | number;
  s: number;
  lo_v: number;
  hi_v: number;
}

/**
 * A tenant's rollup buckets over [from, to) (minutes whose start lies in it), newest first unless
 * `order` is asc. 1h buckets are sums of the exact 1m ones. Counts answer type/app/level filters,
 * metric series answer name/app/label filters; a filter one of them has no column for empties it
 * (`level` leaves no metric series, `name` no counts). All buckets or a 422: never a partial list.
 */
export async function queryRollups(client: ClickHouseClient, q: EntryQuery & { rollup: Rollup }, bounds: QueryBounds): Promise<RollupPage> {
  const common = (): Where => {
    const w = new Where({ tenant: q.tenant, limit: q.limit + 1 }, 'tenant_id = {tenant:String}', 'count > 0').eq('app', q.app);
    if (q.fromMs !== undefined) w.add('minute >= toStartOfMinute(fromUnixTimestamp64Milli({from:Int64}))', { from: q.fromMs });
    if (q.toMs !== undefined) w.add('minute < fromUnixTimestamp64Milli({to:Int64})', { to: q.toMs });
    return w;
  };
  const bucket = q.rollup === '1h' ? 'toStartOfHour(minute)' : 'minute';
  const dir = q.order === 'asc' ? 'ASC' : 'DESC';
  /** One list's buckets, all of them or the 422. */
  const read = async <T>(select: string, table: string, w: Where, groupOrder: string): Promise<T[]> => {
    const rs = await client.query({
      query: `SELECT toUnixTimestamp(${bucket}) AS t, ${select} FROM ${table} FINAL WHERE ${w.sql()} ${groupOrder.replace('$dir', dir)} LIMIT {limit:UInt32} SETTINGS ${boundSettings(bounds)}`,
      query_params: w.params,
      format: 'JSONEachRow',
    });
    const raw = await rs.json<T>();
    if (raw.length > q.limit) throw ingestError('INGEST_ERR_ROLLUP_TOO_MANY_BUCKETS', [q.limit]);
    return raw;
  };
  const iso = (t: string | number) => new Date(Number(t) * 1000).toISOString();
  try {
    // A filter one list has no column for leaves that list empty.
    const counts =
      q.name === undefined && q.labels.length === 0
        ? (
            await read<RawCount>(
              'toString(type) AS type, toString(app) AS app, toString(level) AS level, sum(count) AS n',
              ROLLUP_TABLES.counts,
              common().eq('type', q.type).eq('level', q.level),
              'GROUP BY t, type, app, level ORDER BY t $dir, type, app, level',
            )
          ).map((r): CountBucket => ({ time: iso(r.t), type: r.type, app: r.app, level: r.level, count: Number(r.n) }))
        : [];
    const metrics =
      (q.type === undefined || q.type === 'metric') && q.level === undefined
        ? (
            await read<RawMetric>(
              'name, toString(app) AS app, any(labels) AS label_set, sum(count) AS n, sum(sum) AS s, min(min) AS lo_v, max(max) AS hi_v',
              ROLLUP_TABLES.metrics,
              common().eq('name', q.name).labels(q.labels),
              'GROUP BY t, name, labels_hash, app ORDER BY t $dir, name, app, labels_hash',
            )
          ).map((r): MetricBucket => ({ time: iso(r.t), name: r.name, app: r.app, labels: r.label_set, count: Number(r.n), sum: r.s, min: r.lo_v, max: r.hi_v }))
        : [];
    return { rollup: q.rollup, counts, metrics, next: null };
  } catch (e) {
    if (e instanceof IngestError) throw e;
    await clearFailedStatement(client);
    throw boundError(e, bounds) ?? e;
  }
}
