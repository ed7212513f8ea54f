import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NormalizedEntry } from '@ingest/contracts';
import { TelemetryStore } from './store.ts';
import { toRow } from './rows.ts';
import { countBuckets, drillDeleteWindow, runReadOnly, SqlRefusedError } from './ops.ts';

// Real ClickHouse engine (chDB in-process): readonly and the limits are the engine's, not ours.
describe('operator reads on chDB', () => {
  let dir: string;
  let store: TelemetryStore;
  const H = 3_600_000;
  const t0 = Date.UTC(2026, 10, 20, 10);

  const entry = (id: string, ts: number, tenant = 'acme', type: NormalizedEntry['type'] = 'log'): NormalizedEntry => ({
    id, tenant, type, ts, receivedAt: ts, app: 'a', source: 's', labels: {}, name: '', value: null, unit: '', level: 'info', message: id, data: {},
  });

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'ops-'));
    store = await TelemetryStore.open({ chdbPath: path.join(dir, 'chdb') });
    await store.migrate();
    const rows = [
      ...[0, 1, 2].map((i) => entry(`a${i}`, t0 + i * 60_000)),
      ...[0, 1].map((i) => entry(`b${i}`, t0 + H + i * 60_000)),
      entry('m0', t0 + H, 'acme', 'metric'),
      entry('o0', t0 + 2 * H, 'other'),
    ].map((e, i) => toRow(e, 0, i));
    await store.insert('telemetry', rows, 'ops:0');
    // The same entries again under another token: FINAL must count each once.
    await store.insert('telemetry', rows.slice(0, 3), 'ops:1');
  });
  afterAll(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('counts distinct entries per hour, tenant and type in [from, to)', async () => {
    const r = await countBuckets(store.client, { fromMs: t0, toMs: t0 + 3 * H, by: 'hour', limit: 100 });
    expect(r).toEqual({
      truncated: false,
      rows: [
        { bucket: '2026-11-20T10:00:00.000Z', tenant: 'acme', type: 'log', entries: 3 },
        { bucket: '2026-11-20T11:00:00.000Z', tenant: 'acme', type: 'log', entries: 2 },
        { bucket: '2026-11-20T11:00:00.000Z', tenant: 'acme', type: 'metric', entries: 1 },
        { bucket: '2026-11-20T12:00:00.000Z', tenant: 'other', type: 'log', entries: 1 },
      ],
    });
    const day = await countBuckets(store.client, { fromMs: t0, toMs: t0 + 2 * H, by: 'day', tenant: 'acme', type: 'log', limit: 100 });
    expect(day.rows).toEqual([{ bucket: '2026-11-20T00:00:00.000Z', tenant: 'acme', type: 'log', entries: 5 }]);
    const cut = await countBuckets(store.client, { fromMs: t0, toMs: t0 + 3 * H, by: 'hour', limit: 2 });
    expect(cut.rows).toHaveLength(2);
    expect(cut.truncated).toBe(true);
    expect((await countBuckets(store.client, { fromMs: t0, toMs: t0 + 3 * H, by: 'hour', tenant: "acme' OR 1=1 --", limit: 10 })).rows).toEqual([]);
  });

  it('runs a SELECT read-only and returns columns and rows', async () => {
    const r = await runReadOnly(store.client, "SELECT tenant_id, count() AS n FROM telemetry FINAL GROUP BY tenant_id ORDER BY tenant_id");
    expect(r.columns.map((c) => c.name)).toEqual(['tenant_id', 'n']);
    expect(r.columns[1]?.type).toBe('UInt64');
    expect(r.rows).toEqual([['acme', '6'], ['other', '1']]);
    expect((await runReadOnly(store.client, 'SELECT 1 AS one;\n')).rows).toEqual([[1]]);
    expect(r.truncated).toBe(false);
  });

  it('cuts a long result at the row limit and says so', async () => {
    const r = await runReadOnly(store.client, 'SELECT number FROM numbers(100000)', { maxRows: 10, maxBytes: 1 << 20, maxExecutionSeconds: 10, maxMemoryBytes: 1 << 28 });
    expect(r.rows).toHaveLength(10);
    expect(r.truncated).toBe(true);
  });

  it.each([
    ["INSERT INTO telemetry (tenant_id, id) VALUES ('x', 'y')"],
    ['ALTER TABLE telemetry DELETE WHERE 1'],
    ['DROP TABLE telemetry'],
    ['TRUNCATE TABLE telemetry'],
    ['CREATE TABLE evil (a Int32) ENGINE = Memory'],
    ['SET readonly = 0'],
    // chDB runs ";"-separated statements in one call: the second one must never reach it.
    ['SELECT 1; DROP TABLE telemetry'],
    ['SELECT 1); DROP TABLE telemetry; SELECT (1'],
  ])('refuses a write and changes nothing: %s', async (statement) => {
    await expect(runReadOnly(store.client, statement)).rejects.toBeInstanceOf(SqlRefusedError);
    const r = await runReadOnly(store.client, "SELECT count() AS n FROM system.tables WHERE name IN ('telemetry', 'evil')");
    expect(r.rows).toEqual([['1']]);
    expect((await countBuckets(store.client, { fromMs: t0, toMs: t0 + 3 * H, by: 'day', limit: 10 })).rows.reduce((n, x) => n + x.entries, 0)).toBe(7);
  });

  it('runs in the engine with readonly=1 and leaves the shared session writable', async () => {
    const r = await runReadOnly(store.client, "SELECT getSetting('readonly') AS ro, getSetting('max_execution_time') AS t");
    expect(r.rows).toEqual([[1, 30]]);
    // chDB applies clickhouse_settings to its one session; the sink writer's loader writes on it next.
    await store.insert('telemetry_shadow', [toRow(entry('after', t0), 9, 0)], 'ops:after');
    expect(await store.count({ tenant: 'acme', table: 'telemetry_shadow' })).toBe(1);
  });

  it.each([["SELECT * FROM file('/etc/passwd', 'LineAsString')"], ["SELECT file('/etc/hostname')"], ["SELECT * FROM /* hidden */ url ('http://127.0.0.1:9/', CSV, 'a String')"]])(
    'refuses a function that reaches outside the database: %s',
    async (statement) => {
      await expect(runReadOnly(store.client, statement)).rejects.toBeInstanceOf(SqlRefusedError);
    },
  );

  it('enforces the memory and time limits in the engine', async () => {
    const big = await runReadOnly(store.client, 'SELECT length(groupArray(number)) FROM numbers(20000000)', { maxRows: 10, maxBytes: 1 << 20, maxExecutionSeconds: 30, maxMemoryBytes: 10_000_000 }).then(
      (r) => JSON.stringify(r.rows),
      (e: unknown) => (e as Error).message,
    );
    expect(big).toMatch(/memory limit exceeded/i);
    // An inner SETTINGS cannot raise the limit set around it.
    const slow = await runReadOnly(store.client, 'SELECT sum(cityHash64(number)) FROM numbers(100000000000) SETTINGS max_execution_time = 1000', { maxRows: 10, maxBytes: 1 << 20, maxExecutionSeconds: 1, maxMemoryBytes: 1 << 30 }).then(
      (r) => JSON.stringify(r.rows),
      (e: unknown) => (e as Error).message,
    );
    expect(slow).toMatch(/timeout exceeded/i);
  });

  it('the drill delete removes exactly one tenant-hour', async () => {
    const deleted = await drillDeleteWindow(store.client, { tenant: 'acme', fromMs: t0 + H, toMs: t0 + 2 * H });
    expect(deleted).toBe(3);
    const r = await countBuckets(store.client, { fromMs: t0, toMs: t0 + 3 * H, by: 'hour', limit: 100 });
    expect(r.rows.map((x) => `${x.bucket.slice(11, 13)} ${x.tenant} ${x.type} ${x.entries}`)).toEqual(['10 acme log 3', '12 other log 1']);
  });
});
