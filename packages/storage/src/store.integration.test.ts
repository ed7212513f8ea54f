import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NormalizedEntry } from '@ingest/contracts';
import { TelemetryStore } from './store.ts';
import { encodeRow, positionTail, positionedBody, toRow } from './rows.ts';

// Real ClickHouse engine (chDB in-process): the SQL here is the SQL a ClickHouse server runs.
describe('TelemetryStore on chDB', () => {
  let dir: string;
  let store: TelemetryStore;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'store-'));
    store = await TelemetryStore.open({ chdbPath: path.join(dir, 'chdb') });
    await store.migrate();
  });
  afterAll(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  const entry = (id: string, tenant = 't1'): NormalizedEntry => ({
    id, tenant, type: 'log', ts: Date.UTC(2026, 10, 20, 12), receivedAt: Date.now(), app: 'a', source: 's', labels: { k: 'v' },
    name: '', value: null, unit: '', level: 'info', message: `m-${id}`, data: {},
  });

  it('migrations are idempotent', async () => {
    expect(await store.migrate()).toEqual([]);
  });

  it('a retried block with the same token adds nothing', async () => {
    const rows = [entry('a'), entry('b')].map((e, i) => toRow(e, 0, i));
    await store.insert('telemetry', rows, 'telemetry.v2:0:0-1');
    await store.insert('telemetry', rows, 'telemetry.v2:0:0-1');
    expect(await store.rowStats('telemetry', 't1')).toEqual({ rows: 2, distinctIds: 2, final: 2 });
  });

  it('the same ids under a different token collapse to one row each when read FINAL', async () => {
    const rows = [entry('a'), entry('b'), entry('c')].map((e, i) => toRow(e, 0, i + 10));
    await store.insert('telemetry', rows, 'telemetry.v2:0:10-12');
    const s = await store.rowStats('telemetry', 't1');
    expect(s.distinctIds).toBe(3);
    expect(s.final).toBe(3);
    expect(await store.count({ tenant: 't1' })).toBe(3);
  });

  it('counts per tenant and type with parameters', async () => {
    await store.insert('telemetry', [toRow(entry('x', 't2'), 1, 0)], 'telemetry.v2:1:0-0');
    expect(await store.count({ tenant: 't2' })).toBe(1);
    expect(await store.count({ tenant: 't2', type: 'metric' })).toBe(0);
    expect(await store.count({ tenant: "t2' OR 1=1 --" })).toBe(0);
  });

  it('encoded rows insert as bytes: every column as toRow would store it, the token deduplicates, the next token adds', async () => {
    const e: NormalizedEntry = { ...entry('enc-1', 't3'), type: 'metric', name: 'cpu', value: 0.25, unit: 'ratio', labels: { host: 'a"b', 'ü': '\n' }, message: 'quote " and \\ and \u2028', data: { nested: { k: [1, 'x'] } } };
    const body = (offset: number) => positionedBody([{ row: Buffer.from(encodeRow(e)), tail: positionTail(3, offset) }]);
    await store.insertEncoded('telemetry', body(7), 'enc:3:7-7');
    await store.insertEncoded('telemetry', body(7), 'enc:3:7-7');
    expect(await store.rowStats('telemetry', 't3')).toEqual({ rows: 1, distinctIds: 1, final: 1 });
    const rs = await store.client.query({ query: "SELECT * EXCEPT (ts, received_at), toUnixTimestamp64Milli(ts) AS ts, toUnixTimestamp64Milli(received_at) AS received_at FROM telemetry WHERE tenant_id = 't3'", format: 'JSONEachRow', clickhouse_settings: { output_format_json_quote_64bit_integers: 0 } });
    const [got] = await rs.json<Record<string, unknown>>();
    expect(got).toEqual({ ...toRow(e, 3, 7) });
    // A retry of the same range is a no-op; a later range with the same entry is a second raw row that FINAL collapses.
    await store.insertEncoded('telemetry', body(8), 'enc:3:8-8');
    expect(await store.rowStats('telemetry', 't3')).toEqual({ rows: 2, distinctIds: 1, final: 1 });
  });
});
