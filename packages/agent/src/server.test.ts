import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import type { FastifyInstance } from 'fastify';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { IngestClient, type IngestClientOptions } from '@ingest/client';
import { FakeTransport } from '@ingest/client/testing';
import { buildAgent, type AgentOptions } from './server.ts';

const opened: Array<{ app: FastifyInstance; client: IngestClient }> = [];
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
afterEach(async () => {
  for (const o of opened.splice(0)) {
    await o.app.close();
    await o.client.close();
  }
});

async function agent(o: Partial<AgentOptions> = {}, c: Partial<IngestClientOptions> = {}) {
  const t = new FakeTransport();
  const walDir = await mkdtemp(path.join(tmpdir(), 'agent-test-'));
  dirs.push(walDir);
  const client = new IngestClient({ walDir, transport: t, flushIntervalMs: 10, ...c });
  await client.start();
  const app = await buildAgent({ client, ...o });
  opened.push({ app, client });
  return { app, client, t };
}

describe('agent /v2/ingest', () => {
  it('takes a JSON array, {entries} and NDJSON, and forwards each entry with an id', async () => {
    const { app, client, t } = await agent();
    const e = (m: string) => ({ type: 'log', timestamp: 1_700_000_000_000, data: { message: m } });
    const r1 = await app.inject({ method: 'POST', url: '/v2/ingest', headers: { 'content-type': 'application/json' }, payload: JSON.stringify([e('a'), e('b')]) });
    const r2 = await app.inject({ method: 'POST', url: '/v2/ingest', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ entries: [e('c')] }) });
    const r3 = await app.inject({ method: 'POST', url: '/v2/ingest', headers: { 'content-type': 'application/x-ndjson' }, payload: `${JSON.stringify(e('d'))}\n${JSON.stringify({ ...e('e'), id: 'given' })}\n` });
    expect([r1.json(), r2.json(), r3.json()]).toEqual([
      { accepted: 2, rejected: [] },
      { accepted: 1, rejected: [] },
      { accepted: 2, rejected: [] },
    ]);
    expect(await client.drain(5000)).toBe(true);
    expect(t.delivered.map((x) => (x['data'] as { message: string }).message)).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(t.delivered.every((x) => typeof x['id'] === 'string')).toBe(true);
    expect(t.delivered[4]!['id']).toBe('given');
  });

  it('rejects bad entries by index and keeps the rest (partial success)', async () => {
    const { app } = await agent();
    const r = await app.inject({ method: 'POST', url: '/v2/ingest', headers: { 'content-type': 'application/json' }, payload: JSON.stringify([{ type: 'log', data: {} }, 5, { type: 'bogus', data: {} }]) });
    expect(r.statusCode).toBe(200);
    const body = r.json<{ accepted: number; rejected: Array<{ index: number; code: string }> }>();
    expect(body.accepted).toBe(1);
    expect(body.rejected.map((x) => [x.index, x.code])).toEqual([
      [1, 'CLIENT_ERR_INVALID_ENTRY'],
      [2, 'CLIENT_ERR_INVALID_ENTRY'],
    ]);
  });

  it('bounds the body after decompression and refuses bad JSON', async () => {
    const { app } = await agent({ bodyLimitBytes: 10_000 });
    const big = gzipSync(Buffer.from(JSON.stringify([{ type: 'log', data: { message: 'x'.repeat(50_000) } }])));
    const r = await app.inject({ method: 'POST', url: '/v2/ingest', headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, payload: big });
    expect(r.statusCode).toBe(413);
    expect(r.json()).toMatchObject({ error: { code: 'CLIENT_ERR_BODY_TOO_LARGE', retryable: false } });
    const bad = await app.inject({ method: 'POST', url: '/v2/ingest', headers: { 'content-type': 'application/json' }, payload: '[{' });
    expect(bad.statusCode).toBe(400);
    const enc = await app.inject({ method: 'POST', url: '/v2/ingest', headers: { 'content-type': 'application/json', 'content-encoding': 'br' }, payload: '[]' });
    expect(enc.statusCode).toBe(415);
  });

  it('answers 503 with Retry-After when the WAL is full under rejectNew', async () => {
    const { app, t } = await agent({}, { fullPolicy: 'rejectNew', segmentBytes: 8192, maxDiskBytes: 16_384, maxEntryBytes: 1024, maxBatchBytes: 4096 });
    t.hold();
    let last;
    for (let i = 0; i < 50; i++) {
      last = await app.inject({ method: 'POST', url: '/v2/ingest', headers: { 'content-type': 'application/json' }, payload: JSON.stringify(Array.from({ length: 20 }, () => ({ type: 'log', data: { message: 'm'.repeat(100) } }))) });
      if (last.statusCode !== 200) break;
    }
    expect(last?.statusCode).toBe(503);
    expect(last?.headers['retry-after']).toBe('1');
    t.release();
  });
});

describe('agent /write (Influx line protocol)', () => {
  it('records one metric per field with the line timestamp, gzip bodies, v1 and v2 paths', async () => {
    const { app, client, t } = await agent();
    const body = gzipSync('cpu,host=h1 usage_idle=99.5,usage_user=0.5 1700000000\nload value=1.25 1700000001\n');
    const r = await app.inject({ method: 'POST', url: '/write?db=telegraf&precision=s', headers: { 'content-type': 'text/plain; charset=utf-8', 'content-encoding': 'gzip' }, payload: body });
    expect(r.statusCode).toBe(204);
    const r2 = await app.inject({ method: 'POST', url: '/api/v2/write?org=o&bucket=b&precision=ms', headers: { 'content-type': 'text/plain' }, payload: 'mem used=5i 1700000002000' });
    expect(r2.statusCode).toBe(204);
    expect(await client.drain(5000)).toBe(true);
    expect(t.delivered.map((e) => [(e['data'] as { name: string }).name, (e['data'] as { value: number }).value, e['timestamp'], e['labels']])).toEqual([
      ['cpu.usage_idle', 99.5, 1_700_000_000_000, { host: 'h1' }],
      ['cpu.usage_user', 0.5, 1_700_000_000_000, { host: 'h1' }],
      ['load', 1.25, 1_700_000_001_000, undefined],
      ['mem.used', 5, 1_700_000_002_000, undefined],
    ]);
  });

  it('writes the good lines of a partly bad body and answers 400 naming the bad line', async () => {
    const { app, client, t } = await agent();
    const r = await app.inject({ method: 'POST', url: '/write', headers: { 'content-type': 'text/plain' }, payload: 'ok v=1 1700000000000000000\nbroken line\n' });
    expect(r.statusCode).toBe(400);
    expect(r.json<{ message: string }>().message).toMatch(/line 2/);
    expect(await client.drain(5000)).toBe(true);
    expect(t.delivered).toHaveLength(1);
    const p = await app.inject({ method: 'POST', url: '/write?precision=fortnights', payload: 'ok v=1' });
    expect(p.statusCode).toBe(400);
  });

  it('requires the token when one is set (Bearer, Token or ?p=), but not for health', async () => {
    const { app } = await agent({ token: 's3cret' });
    const post = (headers: Record<string, string>, url = '/write') => app.inject({ method: 'POST', url, headers: { 'content-type': 'text/plain', ...headers }, payload: 'm v=1' });
    expect((await post({})).statusCode).toBe(401);
    expect((await post({ authorization: 'Bearer wrong' })).statusCode).toBe(401);
    expect((await post({ authorization: 'Token s3cret' })).statusCode).toBe(204);
    expect((await post({ authorization: 'Bearer s3cret' })).statusCode).toBe(204);
    expect((await post({}, '/write?u=x&p=s3cret')).statusCode).toBe(204);
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
  });

  it('serves stats and Prometheus metrics', async () => {
    const { app } = await agent();
    await app.inject({ method: 'POST', url: '/write', payload: 'm v=1', headers: { 'content-type': 'text/plain' } });
    const s = await app.inject({ method: 'GET', url: '/stats' });
    expect(s.json()).toMatchObject({ appendedTotal: 1 });
    const m = await app.inject({ method: 'GET', url: '/metrics' });
    expect(m.body).toContain('ingest_agent_appended_total 1');
  });
});
