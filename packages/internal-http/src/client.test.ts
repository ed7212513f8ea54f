import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IngestError } from '@ingest/contracts';
import { HopClient } from './client.ts';

// A real HTTP server standing in for the downstream service; the mapping is what is under test.
describe('HopClient error mapping', () => {
  let server: FastifyInstance;
  let url: string;
  beforeAll(async () => {
    server = Fastify();
    server.post('/ok', async () => ({ accepted: 1 }));
    server.post('/429', async (_r, reply) => reply.code(429).header('retry-after', '7').send({ error: { code: 'INGEST_ERR_SINK_OVERLOADED', message: 'full', retryable: true } }));
    server.post('/503-coded', async (_r, reply) => reply.code(503).header('retry-after', '2').send({ error: { code: 'INGEST_ERR_LOG_UNAVAILABLE', message: 'log down', retryable: true } }));
    server.post('/500', async (_r, reply) => reply.code(500).send('boom'));
    server.post('/hang', (_r, _reply) => new Promise(() => undefined));
    server.post('/400', async (_r, reply) => reply.code(400).send({ error: { code: 'INGEST_ERR_INVALID_BODY', message: 'bad', retryable: false } }));
    url = await server.listen({ host: '127.0.0.1', port: 0 });
  });
  afterAll(async () => {
    server.server.closeAllConnections();
    await server.close();
  });

  const call = async (path: string, base = url) => {
    const c = new HopClient(base, { name: 'down', timeoutMs: 2000, overloadedCode: 'INGEST_ERR_NORMALIZER_OVERLOADED' });
    try {
      return await c.postJson(path, {});
    } catch (e) {
      return e as IngestError;
    } finally {
      await c.close();
    }
  };

  it('passes 2xx bodies through', async () => expect(await call('/ok')).toEqual({ accepted: 1 }));
  it('keeps a 429 code and its Retry-After', async () => {
    const e = (await call('/429')) as IngestError;
    expect([e.code, e.statusCode, e.retryAfterSeconds]).toEqual(['INGEST_ERR_SINK_OVERLOADED', 429, 7]);
  });
  it('keeps a coded 503 (the original reason reaches the producer)', async () => {
    const e = (await call('/503-coded')) as IngestError;
    expect([e.code, e.statusCode, e.retryAfterSeconds, e.message]).toEqual(['INGEST_ERR_LOG_UNAVAILABLE', 503, 2, 'log down']);
  });
  it('turns an uncoded 5xx and a refused connection into 503 DEPENDENCY_UNAVAILABLE', async () => {
    expect(((await call('/500')) as IngestError).code).toBe('INGEST_ERR_DEPENDENCY_UNAVAILABLE');
    const refused = (await call('/ok', 'http://127.0.0.1:1')) as IngestError;
    expect([refused.code, refused.statusCode]).toEqual(['INGEST_ERR_DEPENDENCY_UNAVAILABLE', 503]);
  });
  it('passes a coded 4xx through', async () => expect(((await call('/400')) as IngestError).code).toBe('INGEST_ERR_INVALID_BODY'));

  it('close(graceMs) gives calls in flight that long, then aborts them; a second close is the same close', async () => {
    const c = new HopClient(url, { name: 'down', timeoutMs: 60_000, overloadedCode: 'INGEST_ERR_NORMALIZER_OVERLOADED' });
    const call = c.postJson('/hang', {}).catch((e: unknown) => e as IngestError);
    // Closing only once the call is on the wire: a close before it would simply refuse it.
    await new Promise((r) => server.server.once('request', r));
    const closing = c.close(50);
    expect(c.close(50)).toBe(closing);
    await closing;
    expect(((await call) as IngestError).code).toBe('INGEST_ERR_DEPENDENCY_UNAVAILABLE');
  });
});
