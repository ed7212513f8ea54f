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
  // Inside the accepted window: a minute ago, in seconds.
  const recentS = Math.floor(Date.now() / 1000) - 60;

  it('records one metric per field with the line timestamp, gzip bodies, v1 and v2 paths', async () => {
    const { app, client, t } = await agent();
    const body = gzipSync(`cpu,host=h1 usage_idle=99.5,usage_user=0.5 ${recentS}\nload value=1.25 ${recentS + 1}\n`);
    const r = await app.inject({ method: 'POST', url: '/write?db=telegraf&precision=s', headers: { 'content-type': 'text/plain; charset=utf-8', 'content-encoding': 'gzip' }, payload: body });
    expect(r.statusCode).toBe(204);
    const r2 = await app.inject({ method: 'POST', url: '/api/v2/write?org=o&bucket=b&precision=ms', headers: { 'content-type': 'text/plain' }, payload: `mem used=5i ${(recentS + 2) * 1000}` });
    expect(r2.statusCode).toBe(204);
    expect(await client.drain(5000)).toBe(true);
    const ms = recentS * 1000;
    expect(t.delivered.map((e) => [(e['data'] as { name: string }).name, (e['data'] as { value: number }).value, e['timestamp'], e['labels']])).toEqual([
      ['cpu.usage_idle', 99.5, ms, { host: 'h1' }],
      ['cpu.usage_user', 0.5, ms, { host: 'h1' }],
      ['load', 1.25, ms + 1000, undefined],
      ['mem.used', 5, ms + 2000, undefined],
    ]);
  });

  it('writes the good lines of a partly bad body and answers 400 in Influx\'s shape naming the bad line', async () => {
    const { app, client, t } = await agent();
    const r = await app.inject({ method: 'POST', url: '/write?precision=s', headers: { 'content-type': 'text/plain' }, payload: `ok v=1 ${recentS}\nbroken line\n` });
    expect(r.statusCode).toBe(400);
    const body = r.json<{ code: string; message: string; line: number }>();
    expect(body).toMatchObject({ code: 'invalid', line: 2 });
    expect(body.message).toMatch(/^INGEST_ERR_PARTIAL_WRITE: 1 points stored, 1 refused: line 2: INGEST_ERR_ENTRY_UNDECODABLE: /);
    expect(await client.drain(5000)).toBe(true);
    expect(t.delivered).toHaveLength(1);
    const p = await app.inject({ method: 'POST', url: '/write?precision=fortnights', payload: 'ok v=1' });
    expect(p.statusCode).toBe(400);
    expect(p.json<{ message: string }>().message).toMatch(/^INGEST_ERR_INVALID_PARAMETER: .*precision/);
  });

  it('refuses a line with only string fields visibly, keeps the others, and counts the refusal by reason', async () => {
    const { app, client, t } = await agent();
    const r = await app.inject({ method: 'POST', url: '/write?precision=s', headers: { 'content-type': 'text/plain' }, payload: `cpu value=1 ${recentS}\nstatus state="up",note="fine" ${recentS}\nmem used=2i,label="x" ${recentS}\n` });
    expect(r.statusCode).toBe(400);
    const body = r.json<{ code: string; message: string; line: number }>();
    expect(body).toMatchObject({ code: 'invalid', line: 2 });
    expect(body.message).toContain('INGEST_ERR_PARTIAL_WRITE: 2 points stored, 1 refused: line 2: INGEST_ERR_ENTRY_VALUE: status has only string fields');
    expect(await client.drain(5000)).toBe(true);
    expect(t.delivered.map((e) => (e['data'] as { name: string }).name)).toEqual(['cpu', 'mem.used']);
    const s = (await app.inject({ method: 'GET', url: '/stats' })).json<{ refused: Record<string, number>; refusedTotal: number; appendedTotal: number }>();
    expect(s).toMatchObject({ refused: { INGEST_ERR_ENTRY_VALUE: 1 }, refusedTotal: 1, appendedTotal: 2 });
    const m = await app.inject({ method: 'GET', url: '/metrics' });
    expect(m.body).toContain('ingest_agent_refused_total{reason="INGEST_ERR_ENTRY_VALUE"} 1');
  });

  it('answers 400 INGEST_ERR_NO_VALID_ENTRIES when no line was recorded, and 400 INGEST_ERR_EMPTY_BATCH for a body of no lines', async () => {
    const { app, client } = await agent();
    const r = await app.inject({ method: 'POST', url: '/write', headers: { 'content-type': 'text/plain' }, payload: 'a s="x"\nb s="y"\n' });
    expect(r.statusCode).toBe(400);
    const body = r.json<{ code: string; message: string; line: number }>();
    expect(body).toMatchObject({ code: 'invalid', line: 1 });
    expect(body.message).toMatch(/^INGEST_ERR_NO_VALID_ENTRIES: .*\(2 refused\).*line 1: INGEST_ERR_ENTRY_VALUE.*line 2: INGEST_ERR_ENTRY_VALUE/);
    const empty = await app.inject({ method: 'POST', url: '/write', headers: { 'content-type': 'text/plain' }, payload: '# only a comment\n' });
    expect(empty.statusCode).toBe(400);
    expect(empty.json<{ message: string }>().message).toMatch(/^INGEST_ERR_EMPTY_BATCH: /);
    expect(client.stats().appendedTotal).toBe(0);
  });

  it('refuses timestamps outside the normalizer\'s window (7 days back, 10 minutes ahead) at the agent, with a precision hint', async () => {
    const { app, client, t } = await agent();
    const old = recentS - 8 * 24 * 3600;
    const ahead = recentS + 3600;
    const payload = [`old v=1 ${old}`, `ok v=2 ${recentS}`, `ahead v=3 ${ahead}`, 'untimed v=4'].join('\n');
    const r = await app.inject({ method: 'POST', url: '/write?precision=s', headers: { 'content-type': 'text/plain' }, payload });
    expect(r.statusCode).toBe(400);
    const body = r.json<{ message: string; line: number }>();
    expect(body.line).toBe(1);
    expect(body.message).toMatch(/^INGEST_ERR_PARTIAL_WRITE: 2 points stored, 2 refused: line 1: INGEST_ERR_ENTRY_TIMESTAMP: .*older than the accepted window.*precision=s.*; line 3: INGEST_ERR_ENTRY_TIMESTAMP: .*600 s ahead/);
    expect(await client.drain(5000)).toBe(true);
    expect(t.delivered.map((e) => (e['data'] as { name: string }).name)).toEqual(['ok.v', 'untimed.v']);
    // Seconds sent without ?precision= are read as nanoseconds: 1970, refused rather than lost later.
    const wrong = await app.inject({ method: 'POST', url: '/write', headers: { 'content-type': 'text/plain' }, payload: `m v=1 ${recentS}` });
    expect(wrong.statusCode).toBe(400);
    expect(wrong.json<{ message: string }>().message).toMatch(/^INGEST_ERR_NO_VALID_ENTRIES: .*1970-01-01T00:00:01.*precision=ns/);
    expect((await app.inject({ method: 'GET', url: '/stats' })).json<{ refused: Record<string, number> }>().refused).toEqual({ INGEST_ERR_ENTRY_TIMESTAMP: 3 });
  });

  it('takes its window from the options', async () => {
    const { app } = await agent({ maxPastMs: 30 * 24 * 3600 * 1000 });
    const r = await app.inject({ method: 'POST', url: '/write?precision=s', headers: { 'content-type': 'text/plain' }, payload: `m v=1 ${recentS - 8 * 24 * 3600}` });
    expect(r.statusCode).toBe(204);
  });

  it('answers its other errors on the line-protocol routes in Influx\'s shape too', async () => {
    const { app } = await agent({ token: 't', maxEntriesPerRequest: 2 });
    const auth = await app.inject({ method: 'POST', url: '/write', headers: { 'content-type': 'text/plain' }, payload: 'm v=1' });
    expect(auth.statusCode).toBe(401);
    expect(auth.json()).toEqual({ code: 'unauthorized', message: 'CLIENT_ERR_UNAUTHENTICATED: this agent requires its token' });
    const many = await app.inject({ method: 'POST', url: '/api/v2/write', headers: { 'content-type': 'text/plain', authorization: 'Token t' }, payload: 'a v=1\nb v=2\nc v=3' });
    expect(many.statusCode).toBe(413);
    expect(many.json()).toMatchObject({ code: 'request too large', message: expect.stringMatching(/^INGEST_ERR_TOO_MANY_ENTRIES: /) });
    const small = await agent({ bodyLimitBytes: 64 });
    const big = await small.app.inject({ method: 'POST', url: '/write', headers: { 'content-type': 'text/plain' }, payload: `m v=1 ${'#'.repeat(200)}` });
    expect(big.statusCode).toBe(413);
    expect(big.json()).toEqual({ code: 'request too large', message: 'CLIENT_ERR_BODY_TOO_LARGE: the body is larger than 64 bytes' });
    // /v2/ingest keeps the edge's own error shape.
    const v2 = await app.inject({ method: 'POST', url: '/v2/ingest', headers: { 'content-type': 'application/json' }, payload: '[]' });
    expect(v2.statusCode).toBe(401);
    expect(v2.json()).toMatchObject({ error: { code: 'CLIENT_ERR_UNAUTHENTICATED' } });
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
