import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NormalizedEntry } from '@ingest/contracts';
import { encodeRow, positionTail, positionedBody, TelemetryStore } from '@ingest/storage';
import { startShim } from './chdb-http-shim.ts';

// The shim with real chDB behind it, driven by the store over @clickhouse/client's HTTP transport:
// the path the sink writers of `pnpm cluster:test` take.
let dir: string;
let shim: Awaited<ReturnType<typeof startShim>>;
let store: TelemetryStore;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'chdb-shim-'));
  shim = await startShim({ host: '127.0.0.1', port: 0, path: path.join(dir, 'chdb') });
  store = await TelemetryStore.open({ url: shim.url });
  await store.migrate();
});
afterAll(async () => {
  await store?.client.close();
  await shim?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('chDB behind a ClickHouse-HTTP shim', () => {
  it('answers /ping and runs migrations once', async () => {
    expect(await store.ping()).toBe(true);
    expect(await store.migrate()).toEqual([]);
  });

  it('an INSERT body with its dedup token lands once however often it is sent; FINAL counts it with bound parameters', async () => {
    const ts = Date.UTC(2026, 0, 1);
    const entry: NormalizedEntry = { id: 'e-1', tenant: 'shim-t', type: 'log', ts, receivedAt: ts, app: 'a', source: 's', labels: {}, name: '', value: null, unit: '', level: 'info', message: 'x', data: {} };
    const body = positionedBody([{ row: Buffer.from(encodeRow(entry)), tail: positionTail(0, 7) }]);
    await store.insertEncoded('telemetry', body, 'tok-a');
    await store.insertEncoded('telemetry', body, 'tok-a');
    expect(await store.rowStats('telemetry', 'shim-t')).toEqual({ rows: 1, distinctIds: 1, final: 1 });
    expect(await store.count({ tenant: 'shim-t', type: 'log' })).toBe(1);
  });

  it("binds String parameters with quotes, tabs and backslashes as the client escapes them", async () => {
    const s = "it's\ta \\ test";
    const rs = await store.client.query({ query: 'SELECT {s:String} AS s, {n:Int64} + 1 AS n', query_params: { s, n: 41 }, format: 'JSONEachRow' });
    expect(await rs.json()).toEqual([{ s, n: 42 }]);
  });

  it('a failing statement is a ClickHouse error with its code and type', async () => {
    await expect(store.client.query({ query: 'SELECT no_such_column', format: 'JSONEachRow' })).rejects.toMatchObject({ code: '47', type: 'UNKNOWN_IDENTIFIER' });
  });
});
