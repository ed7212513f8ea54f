import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { loadConfig } from '@ingest/config';
import type { DeadLetter, NormalizedEntry } from '@ingest/contracts';
import { encodeRow } from '@ingest/storage';
import { createEmbeddedLog, type DurableLog } from '@ingest/log';
import { adminListener } from '@ingest/observability';
import { buildSinkWriter } from '../app.ts';

/** Waits for `ok()` to hold, polling; fails after `ms` with what it last saw. */
async function until<T>(what: string, ms: number, probe: () => Promise<T>, ok: (v: T) => boolean): Promise<T> {
  const deadline = Date.now() + ms;
  let last: T | undefined;
  while (Date.now() < deadline) {
    last = await probe();
    if (ok(last)) return last;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what}: not reached in ${ms} ms (last: ${JSON.stringify(last)})`);
}

// Real chDB and the real embedded log, one partition so every entry shares the refused one's partition.
describe('loader: a batch ClickHouse refuses does not stall its partition', () => {
  let dir: string;
  let log: DurableLog;
  let sink: FastifyInstance;
  const tenant = 'refused-t';
  const entry = (id: string, message: string): NormalizedEntry => ({
    id, tenant, type: 'log', ts: Date.UTC(2026, 10, 20, 12), receivedAt: Date.now(), app: 'a', source: 's', labels: {},
    name: '', value: null, unit: '', level: 'info', message, data: {},
  });
  const write = async (entries: NormalizedEntry[]) => {
    // The normalizer's hop over HTTP: its rows, one per line, as the normalizer encodes them.
    const payload = entries.map((e) => `${encodeRow(e)}\n`).join('');
    const r = await sink.inject({ method: 'POST', url: '/internal/v2/write', payload, headers: { 'content-type': 'application/x-ndjson', 'x-ingest-tenant': tenant, 'x-ingest-rows': String(entries.length) } });
    expect(r.statusCode).toBe(200);
  };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'loader-refused-'));
    const cfg = loadConfig({ INGEST_DATA_DIR: dir, LOG_PARTITIONS: '1', LOADER_MAX_WAIT_MS: '10', LOADER_REFUSED_ATTEMPTS: '2' });
    log = createEmbeddedLog({ dir: path.join(dir, 'log'), partitions: 1, fsync: 'never', retryInitialMs: 5, retryMaxMs: 50 });
    sink = await buildSinkWriter({ config: cfg.sink, backends: cfg.backends, log, logger: false });
  });
  afterAll(async () => {
    await sink.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('loads the good rows, dead-letters the refused one with its reason, counts it, and loads what follows', async () => {
    // A lone UTF-16 surrogate is valid JSON text (the normalizer passes it through) that
    // ClickHouse's JSONEachRow parser refuses: CANNOT_PARSE_ESCAPE_SEQUENCE, every time.
    await write([entry('g1', 'ok 1'), entry('g2', 'ok 2'), entry('bad', 'broken \ud800 surrogate'), entry('g3', 'ok 3')]);
    const dlqTopic = 'telemetry.v2.dlq';
    // Only once the refused batch is behind it: a new batch in the same partition must load too.
    await until('the refused entry dead-lettered', 30_000, async () => (await log.admin().read(dlqTopic, 0, 0, 100)).length, (n) => n > 0);
    await write([entry('g4', 'later 4'), entry('g5', 'later 5')]);

    await until('loader caught up', 30_000, async () => (await sink.inject({ method: 'GET', url: '/admin/v1/lag' })).json<{ total: number }>().total, (t) => t === 0);
    const count = (await sink.inject({ method: 'GET', url: `/admin/v1/count?tenant=${tenant}` })).json<{ count: number }>().count;
    expect(count).toBe(5);

    const dlq = await log.admin().read(dlqTopic, 0, 0, 100);
    const letters = dlq.map((m) => JSON.parse(m.value.toString('utf8')) as DeadLetter);
    expect(letters).toHaveLength(1);
    expect(letters[0]).toMatchObject({ tenant, code: 'INGEST_ERR_STORE_REFUSED', index: 2 });
    expect(letters[0]?.message).toContain('CANNOT_PARSE_ESCAPE_SEQUENCE');
    expect(letters[0]?.message).toContain('entry bad');
    expect((JSON.parse(letters[0]?.raw ?? '{}') as NormalizedEntry).id).toBe('bad');

    const metrics = (await adminListener(sink).inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toMatch(/^ingest_loader_rows_total\{service="sink-writer"\} 5$/m);
    expect(metrics).toMatch(/^ingest_loader_dead_lettered_total\{reason="CANNOT_PARSE_ESCAPE_SEQUENCE",service="sink-writer"\} 1$/m);
  });
});
