import { markDay } from './rollups.ts';
import { TABLES, type TelemetryStore } from './store.ts';

/**
 * Tables a replay may write and a promote may read from. Replays must never reach the live table,
 * so the allow-list is separate from TABLES and holds shadow tables only.
 */
export const SHADOW_TABLES = [TABLES.shadow] as const;
export type ShadowTableName = (typeof SHADOW_TABLES)[number];

export class NotAShadowTableError extends Error {
  constructor(table: string) {
    super(`refusing to use "${table}" as a replay target: only shadow tables (${SHADOW_TABLES.join(', ')}) can be written by replay, never the live table ${TABLES.live}`);
    this.name = 'NotAShadowTableError';
  }
}

export function isShadowTable(t: string): t is ShadowTableName {
  return (SHADOW_TABLES as readonly string[]).includes(t);
}

export function assertShadowTable(t: string): asserts t is ShadowTableName {
  if (!isShadowTable(t)) throw new NotAShadowTableError(t);
}

/**
 * "2026-11-20" or "20261120" → 20261120, the value of the tables' partition key toYYYYMMDD(ts).
 * Returns an explanation instead when the text is not a real calendar day.
 */
export function parseDay(s: string): number | string {
  const m = /^(\d{4})-?(\d{2})-?(\d{2})$/.exec(s.trim());
  if (!m) return `"${s}" is not a day: use YYYY-MM-DD (UTC), e.g. 2026-11-20`;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const t = new Date(Date.UTC(y, mo - 1, d));
  if (t.getUTCFullYear() !== y || t.getUTCMonth() !== mo - 1 || t.getUTCDate() !== d) return `"${s}" is not a calendar day`;
  return y * 10_000 + mo * 100 + d;
}

/** 20261120 → "2026-11-20". */
export function formatDay(day: number): string {
  const s = String(day);
  return `${s.slice(0, 4)}-${s.slice(4, 6)}-${s.slice(6, 8)}`;
}

/** The identity of a row in the ReplacingMergeTree: its sorting key (tenant_id, type, ts, id). */
export interface RowKey {
  tenant_id: string;
  type: string;
  /** epoch ms */
  ts: number;
  id: string;
}

export function rowKey(r: RowKey): string {
  return `${r.tenant_id}\u0000${r.type}\u0000${r.ts}\u0000${r.id}`;
}

export interface DiffRow {
  day: number;
  tenant: string;
  type: string;
  /** Start of the hour, ISO 8601 UTC. */
  hour: string;
  liveCount: number;
  shadowCount: number;
  /** sum(cityHash64(id)) mod 2^64 as a decimal string: equal counts with different ids still differ. */
  liveChecksum: string;
  shadowChecksum: string;
  equal: boolean;
}

export interface DiffQuery {
  /** yyyymmdd days to compare; when empty, every day the shadow table holds. */
  days?: number[];
  tenant?: string;
  table?: ShadowTableName;
}

export interface PromotePlan {
  day: number;
  partitionId: string;
  source: ShadowTableName;
  target: typeof TABLES.live;
  /** Exactly what runs (values shown inline for the reader; the statement itself is parameterized). */
  sql: string;
  liveRows: number;
  shadowRows: number;
  /** Rows the shadow adds to live (the gap being repaired). */
  shadowOnly: number;
  /** Rows live holds that the shadow lacks: a promote deletes them from live. */
  liveOnly: number;
  tenants: Array<{ tenant: string; live: number; shadow: number }>;
}

/** Chunk of keys per existence query: keeps query parameters (sent in the URL) well below server limits. */
const LOOKUP_BATCH = 1000;

/**
 * The shadow workflow's queries. Identifiers come only from the allow-lists above; every value is
 * a {name:Type} query parameter.
 */
export class ShadowStore {
  constructor(private readonly store: TelemetryStore) {}

  /**
   * Which of `rows` the table already holds, by full sorting key. This is what makes a replay
   * idempotent independent of insert_deduplication_token: ClickHouse remembers block hashes even
   * after ALTER … DELETE, so the token alone can neither tell "already there" nor let a cleaned
   * table take the rows again.
   */
  async existing(table: ShadowTableName, rows: readonly RowKey[]): Promise<Set<string>> {
    assertShadowTable(table);
    const found = new Set<string>();
    for (let i = 0; i < rows.length; i += LOOKUP_BATCH) {
      const part = rows.slice(i, i + LOOKUP_BATCH);
      const wanted = new Set(part.map(rowKey));
      let minTs = Infinity;
      let maxTs = -Infinity;
      for (const r of part) {
        if (r.ts < minTs) minTs = r.ts;
        if (r.ts > maxTs) maxTs = r.ts;
      }
      const rs = await this.store.client.query({
        // ts bounds prune day partitions and granules; tenant_id leads the sorting key.
        query: `SELECT tenant_id, type, toUnixTimestamp64Milli(ts) AS ts_ms, id FROM ${table}
                WHERE tenant_id IN {tenants:Array(String)} AND id IN {ids:Array(String)}
                  AND ts >= fromUnixTimestamp64Milli({min:Int64}) AND ts <= fromUnixTimestamp64Milli({max:Int64})`,
        query_params: { tenants: [...new Set(part.map((r) => r.tenant_id))], ids: [...new Set(part.map((r) => r.id))], min: minTs, max: maxTs },
        format: 'JSONEachRow',
      });
      for (const r of await rs.json<{ tenant_id: string; type: string; ts_ms: string | number; id: string }>()) {
        const k = rowKey({ tenant_id: r.tenant_id, type: r.type, ts: Number(r.ts_ms), id: r.id });
        if (wanted.has(k)) found.add(k);
      }
    }
    return found;
  }

  /** Days (yyyymmdd) the shadow table holds, with distinct row counts. */
  async days(table: ShadowTableName = TABLES.shadow): Promise<Array<{ day: number; rows: number }>> {
    assertShadowTable(table);
    const rs = await this.store.client.query({
      query: `SELECT toYYYYMMDD(ts) AS day, count() AS n FROM ${table} FINAL GROUP BY day ORDER BY day`,
      format: 'JSONEachRow',
    });
    return (await rs.json<{ day: number | string; n: number | string }>()).map((r) => ({ day: Number(r.day), rows: Number(r.n) }));
  }

  /** Live vs shadow per day, tenant, type and hour: distinct-row counts and an id checksum. */
  async diff(q: DiffQuery = {}): Promise<{ days: number[]; rows: DiffRow[] }> {
    const table = q.table ?? TABLES.shadow;
    assertShadowTable(table);
    const days = q.days && q.days.length > 0 ? q.days : (await this.days(table)).map((d) => d.day);
    if (days.length === 0) return { days, rows: [] };
    const where = `toYYYYMMDD(ts) IN {days:Array(UInt32)}${q.tenant ? ' AND tenant_id = {tenant:String}' : ''}`;
    const side = (t: string) =>
      `SELECT toYYYYMMDD(ts) AS day, tenant_id, type, toStartOfHour(ts) AS hour, count() AS n, toString(sum(cityHash64(id))) AS h
       FROM ${t} FINAL WHERE ${where} GROUP BY day, tenant_id, type, hour`;
    const rs = await this.store.client.query({
      // FULL JOIN: a bucket present on one side only must show up (as 0 on the other).
      query: `SELECT day, tenant_id, type, toUnixTimestamp(hour) AS hour_s, l.n AS ln, s.n AS sn, l.h AS lh, s.h AS sh
              FROM (${side(TABLES.live)}) AS l FULL OUTER JOIN (${side(table)}) AS s USING (day, tenant_id, type, hour)
              ORDER BY day, tenant_id, type, hour`,
      query_params: { days, tenant: q.tenant ?? '' },
      format: 'JSONEachRow',
      // Unmatched sides read as 0 / '' rather than NULL, whatever the server's default.
      clickhouse_settings: { join_use_nulls: 0 },
    });
    const rows = (await rs.json<{ day: number | string; tenant_id: string; type: string; hour_s: number | string; ln: number | string; sn: number | string; lh: string; sh: string }>()).map(
      (r): DiffRow => {
        const liveCount = Number(r.ln);
        const shadowCount = Number(r.sn);
        const liveChecksum = liveCount === 0 ? '0' : r.lh;
        const shadowChecksum = shadowCount === 0 ? '0' : r.sh;
        return {
          day: Number(r.day),
          tenant: r.tenant_id,
          type: r.type,
          hour: new Date(Number(r.hour_s) * 1000).toISOString(),
          liveCount,
          shadowCount,
          liveChecksum,
          shadowChecksum,
          equal: liveCount === shadowCount && liveChecksum === shadowChecksum,
        };
      },
    );
    return { days, rows };
  }

  /** What `promote(day)` would do to live, computed from both tables. */
  async promotePlan(day: number, table: ShadowTableName = TABLES.shadow): Promise<PromotePlan> {
    assertShadowTable(table);
    const key = '(tenant_id, type, ts, id)';
    const rs = await this.store.client.query({
      query: `SELECT tenant_id,
                     countIf(side = 'l') AS live, countIf(side = 's') AS shadow,
                     countIf(side = 'l' AND NOT in_other) AS live_only, countIf(side = 's' AND NOT in_other) AS shadow_only
              FROM (
                SELECT 'l' AS side, tenant_id, ${key} IN (SELECT ${key} FROM ${table} WHERE toYYYYMMDD(ts) = {day:UInt32}) AS in_other
                FROM ${TABLES.live} FINAL WHERE toYYYYMMDD(ts) = {day:UInt32}
                UNION ALL
                SELECT 's' AS side, tenant_id, ${key} IN (SELECT ${key} FROM ${TABLES.live} WHERE toYYYYMMDD(ts) = {day:UInt32}) AS in_other
                FROM ${table} FINAL WHERE toYYYYMMDD(ts) = {day:UInt32}
              ) GROUP BY tenant_id ORDER BY tenant_id`,
      query_params: { day },
      format: 'JSONEachRow',
    });
    const per = await rs.json<{ tenant_id: string; live: number | string; shadow: number | string; live_only: number | string; shadow_only: number | string }>();
    const sum = (f: (r: (typeof per)[number]) => number | string) => per.reduce((a, r) => a + Number(f(r)), 0);
    return {
      day,
      partitionId: String(day),
      source: table,
      target: TABLES.live,
      sql: `ALTER TABLE ${TABLES.live} REPLACE PARTITION ${day} FROM ${table}`,
      liveRows: sum((r) => r.live),
      shadowRows: sum((r) => r.shadow),
      liveOnly: sum((r) => r.live_only),
      shadowOnly: sum((r) => r.shadow_only),
      tenants: per.map((r) => ({ tenant: r.tenant_id, live: Number(r.live), shadow: Number(r.shadow) })),
    };
  }

  /**
   * Swaps the shadow's day partition into live, atomically per partition: live's parts for that day
   * are replaced by copies of the shadow's. The shadow keeps its copy.
   */
  async promote(day: number, table: ShadowTableName = TABLES.shadow): Promise<void> {
    assertShadowTable(table);
    await this.store.client.command({
      query: `ALTER TABLE ${TABLES.live} REPLACE PARTITION {day:UInt32} FROM ${table}`,
      query_params: { day },
    });
    // The rollups' view does not see a replaced partition: its minutes are marked for recomputing.
    await markDay(this.store.client, day);
  }

  /** Empties the shadow table, or one day of it. */
  async drop(table: ShadowTableName = TABLES.shadow, day?: number): Promise<void> {
    assertShadowTable(table);
    if (day === undefined) await this.store.client.command({ query: `TRUNCATE TABLE ${table}` });
    else await this.store.client.command({ query: `ALTER TABLE ${table} DROP PARTITION {day:UInt32}`, query_params: { day } });
  }
}
