import { gunzipSync } from 'node:zlib';
import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { HttpTransport, interpretResponse, parseRetryAfter } from './transport.ts';

describe('interpretResponse', () => {
  it('takes accepted and rejected from a 200', () => {
    expect(interpretResponse(200, undefined, '{"accepted":2,"rejected":[{"index":1,"code":"INGEST_ERR_ENTRY_TYPE","message":"m"}]}', 3)).toEqual({
      kind: 'ok',
      accepted: 2,
      rejected: [{ index: 1, code: 'INGEST_ERR_ENTRY_TYPE', message: 'm' }],
    });
  });

  it('reads 400 INGEST_ERR_NO_VALID_ENTRIES with its rejected list as per-entry refusals, filling in any the list leaves out', () => {
    const body = (rejected: unknown[]) => JSON.stringify({ error: { code: 'INGEST_ERR_NO_VALID_ENTRIES', message: 'none', retryable: false }, accepted: 0, rejected });
    expect(interpretResponse(400, undefined, body([{ index: 1, code: 'INGEST_ERR_ENTRY_TYPE', message: 't' }, { index: 0, code: 'INGEST_ERR_ENTRY_TIMESTAMP', message: 'old' }]), 2)).toEqual({
      kind: 'ok',
      accepted: 0,
      rejected: [
        { index: 1, code: 'INGEST_ERR_ENTRY_TYPE', message: 't' },
        { index: 0, code: 'INGEST_ERR_ENTRY_TIMESTAMP', message: 'old' },
      ],
    });
    expect(interpretResponse(400, undefined, body([{ index: 0, code: 'INGEST_ERR_ENTRY_TYPE', message: 't' }, { index: 9, code: 'X', message: 'out of range' }]), 2)).toEqual({
      kind: 'ok',
      accepted: 0,
      rejected: [
        { index: 0, code: 'INGEST_ERR_ENTRY_TYPE', message: 't' },
        { index: 1, code: 'INGEST_ERR_NO_VALID_ENTRIES', message: 'none' },
      ],
    });
    // Without the list it stays a refusal of the request.
    expect(interpretResponse(400, undefined, '{"error":{"code":"INGEST_ERR_NO_VALID_ENTRIES","message":"none","retryable":false}}', 2)).toMatchObject({ kind: 'reject', status: 400 });
  });

  it('counts a 2xx it cannot read as accepted: the edge committed it', () => {
    expect(interpretResponse(200, undefined, 'not json', 4)).toEqual({ kind: 'ok', accepted: 4, rejected: [] });
  });

  it('retries 429, 503, 5xx and 408 with the Retry-After it was given', () => {
    const body = '{"error":{"code":"INGEST_ERR_TENANT_ENTRY_RATE","message":"slow down","retryable":true}}';
    expect(interpretResponse(429, '3', body, 1)).toEqual({ kind: 'retry', status: 429, code: 'INGEST_ERR_TENANT_ENTRY_RATE', message: 'slow down', retryAfterMs: 3000 });
    expect(interpretResponse(503, undefined, '', 1)).toMatchObject({ kind: 'retry', status: 503, code: 'HTTP_503' });
    expect(interpretResponse(500, undefined, '', 1).kind).toBe('retry');
    expect(interpretResponse(408, undefined, '', 1).kind).toBe('retry');
  });

  it('maps 401/403 to auth, 413 to tooLarge, other 4xx to reject unless the body says retryable', () => {
    expect(interpretResponse(401, undefined, '{"error":{"code":"INGEST_ERR_INVALID_API_KEY","message":"x","retryable":false}}', 1)).toMatchObject({ kind: 'auth', code: 'INGEST_ERR_INVALID_API_KEY' });
    expect(interpretResponse(403, undefined, '', 1).kind).toBe('auth');
    expect(interpretResponse(413, undefined, '', 1).kind).toBe('tooLarge');
    expect(interpretResponse(400, undefined, '{"error":{"code":"INGEST_ERR_INVALID_JSON","message":"x","retryable":false}}', 1)).toMatchObject({ kind: 'reject', status: 400 });
    expect(interpretResponse(409, undefined, '{"error":{"code":"X","message":"x","retryable":true}}', 1).kind).toBe('retry');
  });
});

describe('parseRetryAfter', () => {
  it('reads delay-seconds and HTTP-dates', () => {
    expect(parseRetryAfter('2')).toBe(2000);
    expect(parseRetryAfter('0.5')).toBe(500);
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:05 GMT', now)).toBe(5000);
    expect(parseRetryAfter(undefined)).toBeUndefined();
    expect(parseRetryAfter('soon')).toBeUndefined();
  });
});

describe('HttpTransport', () => {
  const servers: Array<{ close(): Promise<void> }> = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) await s.close();
  });

  it('POSTs a gzip JSON array with the bearer key to <endpoint>/v2/ingest, keeping a path prefix', async () => {
    const app = Fastify();
    servers.push(app);
    let seen: { url: string; auth?: string; enc?: string; body?: unknown } | undefined;
    app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_r, b, done) => done(null, b));
    app.post('/prefix/v2/ingest', async (req) => {
      seen = { url: req.url, auth: req.headers.authorization, enc: req.headers['content-encoding'], body: JSON.parse(gunzipSync(req.body as Buffer).toString()) };
      return { accepted: 2, rejected: [] };
    });
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    const t = new HttpTransport({ endpoint: `${url}/prefix/`, apiKey: 'k-123' });
    const r = await t.send([Buffer.from('{"a":1}'), Buffer.from('{"b":2}')], { signal: new AbortController().signal });
    await t.close();
    expect(r).toEqual({ kind: 'ok', accepted: 2, rejected: [] });
    expect(seen).toEqual({ url: '/prefix/v2/ingest', auth: 'Bearer k-123', enc: 'gzip', body: [{ a: 1 }, { b: 2 }] });
  });

  it('turns a refused connection into a retry', async () => {
    const t = new HttpTransport({ endpoint: 'http://127.0.0.1:1', apiKey: 'k', timeoutMs: 2000 });
    const r = await t.send([Buffer.from('{}')], { signal: new AbortController().signal });
    await t.close();
    expect(r.kind).toBe('retry');
  });
});
