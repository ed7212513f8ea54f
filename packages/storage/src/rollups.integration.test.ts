import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IngestError, type NormalizedEntry, type RollupPage } from '@ingest/contracts';
import { TelemetryStore } from './store.ts';
import { toRow } from './rows.ts';
import { parseEntryQuery, type QueryBounds } from './query.ts';
import { markerClock, queryRollups, recomputeMarked } from './rollups.ts';
import { ShadowStore } from './shadow.ts';

const roomy: QueryBounds = { maxExecutionSeconds: 10, maxRowsRead: 10_000_000, maxMemoryBytes: 256 * 1024 * 1024 };
const DAY = 20261120;
const t0 = Date.UTC(2026, 10, 20, 10, 0, 0);

/**
 * Real ClickHouse engine (chDB in-process). The rollups must say what `telemetry FINAL` says, after
 * an entry is inserted twice (a producer's retry, a re-read of the log under another token) and
 * after a promote replaced the day — which no insert-fed view sees.
 */
describe('rollups on chDB agree with telemetry FINAL', () => {
  let dir: string;
  let store: TelemetryStore;
  let offset = 0;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'rollups-'));
    store = await TelemetryStore.open({ chdbPath: path.join(dir, 'chdb') });
    await store.migrate();
  });
  afterAll(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  const entry = (i: number, tenant: string, over: Partial<NormalizedEntry> = {}): NormalizedEntry => {
    const metric = i % 3 === 0;
    return {
      id: `${tenant}-${i}`, tenant, type: metric ? 'metric' : i % 3 === 1 ? 'log' : 'event', ts: t0 + i * 7_000, receivedAt: t0, app: `app${i % 2}`, source: 's',
      // The same label set written in two key orders: one series.
      labels: i % 4 === 0 ? { host: `h${i % 5}`, dc: 'x' } : { dc: 'x', host: `h${i % 5}` },
      name: metric ? `cpu${i % 2}` : '', value: metric ? i / 4 : null, unit: '', level: metric ? '' : i % 2 ? 'info' : 'error', message: `m${i}`, data: {}, ...over,
    };
  };
  const insert = async (table: 'telemetry' | 'telemetry_shadow', es: NormalizedEntry[]) => {
    const rows = es.map((e) => toRow(e, 0, offset++));
    await store.insert(table, rows, `test:${offset}`);
  };
  // Each refresh reads only the markers since the last one, as the refresher does once settled.
  let refreshedTo = 0;
  const refresh = async () => {
    const { nowMs } = await markerClock(store.client, 0);
    await recomputeMarked(store.client, refreshedTo, nowMs);
    refreshedTo = nowMs;
  };
  const rollup = async (tenant: string, search: string): Promise<RollupPage> => (await queryRollups(store.client, { ...parseEntryQuery(search, tenant, Date.now()), rollup: search.includes('rollup=1h') ? '1h' : '1m' }, roomy));

  /** The same buckets computed straight from live FINAL. */
  const truth = async (tenant: string, unit: 'minute' | 'hour') => {
    const b = unit === 'hour' ? 'toStartOfHour(ts)' : 'toStartOfMinute(ts)';
    const c = await store.client.query({
      query: `SELECT toUnixTimestamp(${b}) AS t, toString(type) AS type, toString(app) AS app, toString(level) AS level, count() AS n FROM telemetry FINAL WHERE tenant_id = {t:String} GROUP BY t, type, app, level ORDER BY t DESC, type, app, level`,
      query_params: { t: tenant }, format: 'JSONEachRow',
    });
    const m = await store.client.query({
      query: `SELECT toUnixTimestamp(${b}) AS t, name, toString(app) AS app, CAST((arraySort(mapKeys(labels)), arraySort((v, k) -> k, mapValues(labels), mapKeys(labels))), 'Map(String, String)') AS l,
                count() AS n, sum(value) AS s, min(value) AS lo, max(value) AS hi
              FROM telemetry FINAL WHERE tenant_id = {t:String} AND type = 'metric' GROUP BY t, name, app, l ORDER BY t DESC, name, app`,
      query_params: { t: tenant }, format: 'JSONEachRow',
    });
    const iso = (t: string | number) => new Date(Number(t) * 1000).toISOString();
    return {
      counts: (await c.json<{ t: number; type: string; app: string; level: string; n: string }>()).map((r) => ({ time: iso(r.t), type: r.type, app: r.app, level: r.level, count: Number(r.n) })),
      metrics: (await m.json<{ t: number; name: string; app: string; l: Record<string, string>; n: string; s: number; lo: number; hi: number }>()).map((r) => ({ time: iso(r.t), name: r.name, app: r.app, labels: r.l, count: Number(r.n), sum: r.s, min: r.lo, max: r.hi })),
    };
  };
  const sortMetrics = <T extends { time: string; name: string; app: string; labels: Record<string, string> }>(ms: T[]) =>
    [...ms].sort((a, b) => (a.time + a.name + a.app + JSON.stringify(a.labels) < b.time + b.name + b.app + JSON.stringify(b.labels) ? -1 : 1));
  const expectAgreement = async (tenant: string) => {
    for (const unit of ['minute', 'hour'] as const) {
      const want = await truth(tenant, unit);
      const got = await rollup(tenant, unit === 'hour' ? 'rollup=1h' : 'rollup=1m');
      expect(got.counts).toEqual(want.counts);
      expect(sortMetrics(got.metrics)).toEqual(sortMetrics(want.metrics));
    }
  };

  it('after every entry was inserted twice under different tokens, counts and metric aggregates equal FINAL; tenants apart', async () => {
    const a = Array.from({ length: 120 }, (_, i) => entry(i, 'acme'));
    const b = Array.from({ length: 30 }, (_, i) => entry(i, 'beta'));
    await insert('telemetry', a);
    await insert('telemetry', b);
    await insert('telemetry', a.slice(0, 80)); // a retry of part of it, as a re-read of the log would
    await refresh();
    const got = await rollup('acme', 'rollup=1m');
    expect(got.counts.reduce((n, c) => n + c.count, 0)).toBe(120);
    // Two key orders of one label set are one series.
    expect(new Set(got.metrics.map((m) => JSON.stringify(m.labels))).size).toBe(5);
    await expectAgreement('acme');
    await expectAgreement('beta');
    expect((await rollup('beta', 'rollup=1m')).counts.reduce((n, c) => n + c.count, 0)).toBe(30);
  });

  it('an entry loaded again after its minute was computed changes nothing; a new one counts once', async () => {
    const before = await rollup('acme', 'rollup=1h');
    await insert('telemetry', [entry(5, 'acme'), entry(500, 'acme', { ts: t0 + 5 * 7_000 })]);
    await refresh();
    const after = await rollup('acme', 'rollup=1h');
    expect(after.counts.reduce((n, c) => n + c.count, 0)).toBe(before.counts.reduce((n, c) => n + c.count, 0) + 1);
    await expectAgreement('acme');
  });

  it('after a promote that drops entries and moves one to another app, the vanished keys are gone and the rest agree', async () => {
    // The repaired day: acme's first 60 entries, one with another app; beta untouched.
    const repaired = Array.from({ length: 60 }, (_, i) => entry(i, 'acme', i === 1 ? { app: 'moved' } : {}));
    await insert('telemetry_shadow', repaired);
    await insert('telemetry_shadow', Array.from({ length: 30 }, (_, i) => entry(i, 'beta')));
    await new ShadowStore(store).promote(DAY);
    await refresh();
    const got = await rollup('acme', 'rollup=1m');
    expect(got.counts.reduce((n, c) => n + c.count, 0)).toBe(60);
    expect(got.counts.some((c) => c.app === 'moved')).toBe(true);
    expect(got.counts.every((c) => c.count > 0)).toBe(true);
    await expectAgreement('acme');
    await expectAgreement('beta');
  });

  it('filters: type, app and level narrow the counts; name and label.* the metric series; a filter a list has no column for empties it', async () => {
    const all = await truth('acme', 'minute');
    const logs = await rollup('acme', 'rollup=1m&type=log&app=app1');
    expect(logs.counts).toEqual(all.counts.filter((c) => c.type === 'log' && c.app === 'app1'));
    expect(logs.metrics).toEqual([]);
    const series = await rollup('acme', 'rollup=1m&name=cpu0&label.host=h0');
    expect(series.counts).toEqual([]);
    expect(sortMetrics(series.metrics)).toEqual(sortMetrics(all.metrics.filter((m) => m.name === 'cpu0' && m.labels['host'] === 'h0')));
    expect(series.metrics.length).toBeGreaterThan(0);
    const window = await rollup('acme', `rollup=1m&from=${t0 + 120_000}&to=${t0 + 240_000}&order=asc`);
    expect(window.counts.map((c) => c.time)).toEqual([...new Set(all.counts.map((c) => c.time))].filter((t) => Date.parse(t) >= t0 + 120_000 && Date.parse(t) < t0 + 240_000).sort().flatMap((t) => all.counts.filter((c) => c.time === t).map((c) => c.time)));
  });

  it('more buckets than limit is a 422 that says how to narrow it, never a partial list; q, id and cursor are refused with rollup', async () => {
    const err = await rollup('acme', 'rollup=1m&limit=2').then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(IngestError);
    expect((err as IngestError).code).toBe('INGEST_ERR_ROLLUP_TOO_MANY_BUCKETS');
    expect((err as IngestError).statusCode).toBe(422);
    for (const p of ['q=x', 'id=x', `cursor=${Buffer.from('[1,"a","log"]').toString('base64url')}`]) {
      expect(() => parseEntryQuery(`rollup=1m&${p}`, 'acme', Date.now())).toThrow(/not available with rollup/);
    }
    expect(() => parseEntryQuery('rollup=5m', 'acme', Date.now())).toThrow(/use 1m or 1h/);
  });
});
