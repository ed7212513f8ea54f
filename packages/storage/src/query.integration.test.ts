import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IngestError, type NormalizedEntry } from '@ingest/contracts';
import { TelemetryStore } from './store.ts';
import { toRow } from './rows.ts';
import { parseEntryQuery, queryEntries, type QueryBounds } from './query.ts';

// Real ClickHouse engine (chDB in-process): the bounds are the engine's, mapped to our codes.
describe('queryEntries bounds on chDB', () => {
  let dir: string;
  let store: TelemetryStore;
  const t0 = Date.UTC(2026, 10, 20, 10);
  const roomy: QueryBounds = { maxExecutionSeconds: 10, maxRowsRead: 10_000_000, maxMemoryBytes: 256 * 1024 * 1024 };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'query-'));
    store = await TelemetryStore.open({ chdbPath: path.join(dir, 'chdb') });
    await store.migrate();
    const rows = Array.from({ length: 50 }, (_, i): NormalizedEntry => ({
      id: `e${i}`, tenant: 'acme', type: 'log', ts: t0 + i, receivedAt: t0 + i, app: 'a', source: 's', labels: { k: String(i % 2) }, name: '', value: null, unit: '', level: 'info', message: `m${i}`, data: {},
    })).map((e, i) => toRow(e, 0, i));
    await store.insert('telemetry', rows, 'q:0');
  });
  afterAll(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  const refusal = async (p: Promise<unknown>) => {
    try {
      await p;
    } catch (e) {
      return e instanceof IngestError ? [e.code, e.statusCode] : e;
    }
    return 'answered';
  };

  it('over rows read or memory: a 422 that says which; the session answers the next query normally', async () => {
    const q = parseEntryQuery('limit=10', 'acme', t0);
    expect(await refusal(queryEntries(store.client, q, { ...roomy, maxRowsRead: 5 }))).toEqual(['INGEST_ERR_QUERY_TOO_MANY_ROWS', 422]);
    expect(await refusal(queryEntries(store.client, q, { ...roomy, maxMemoryBytes: 1024 }))).toEqual(['INGEST_ERR_QUERY_MEMORY', 422]);
    // Nothing of the failed statements leaks into the next result on the one chDB session.
    const page = await queryEntries(store.client, q, roomy);
    expect(page.entries.map((e) => e.id)).toEqual(['e49', 'e48', 'e47', 'e46', 'e45', 'e44', 'e43', 'e42', 'e41', 'e40']);
    expect(page.next).not.toBeNull();
  });

  it('over its execution time: a 422 INGEST_ERR_QUERY_TIMEOUT, and the next query is answered', async () => {
    // Enough rows that a substring search over them runs past a 1 ms bound (ClickHouse checks between blocks).
    await store.client.command({
      query: `INSERT INTO telemetry (tenant_id, id, type, ts, received_at, app, source, name, value, unit, level, message, labels, data, log_partition, log_offset)
              SELECT 'slow', toString(number), 'log', fromUnixTimestamp64Milli(toInt64(${t0} + number)), now64(3), 'a', 's', '', NULL, '', 'info', repeat('x', 200), map(), '{}', 1, number
              FROM numbers(400000)`,
    });
    const q = parseEntryQuery('q=needle-that-is-nowhere', 'slow', t0);
    expect(await refusal(queryEntries(store.client, q, { ...roomy, maxExecutionSeconds: 0.001 }))).toEqual(['INGEST_ERR_QUERY_TIMEOUT', 422]);
    expect((await queryEntries(store.client, parseEntryQuery('limit=1', 'slow', t0), roomy)).entries).toHaveLength(1);
  });

  it('readonly: the statement cannot change settings or write, whatever the values', async () => {
    const q = parseEntryQuery(`q=${encodeURIComponent("'); DROP TABLE telemetry; --")}&label.${encodeURIComponent("k'] = '' OR 1=1 --")}=x`, 'acme', t0);
    expect((await queryEntries(store.client, q, roomy)).entries).toEqual([]);
    expect((await queryEntries(store.client, parseEntryQuery('limit=1', 'acme', t0), roomy)).entries).toHaveLength(1);
  });
});
