import Fastify, { type FastifyServerOptions } from 'fastify';
import { describe, expect, it } from 'vitest';
import { adminListener, clientErrorOf, installServiceBasics, isProtectedRoute } from './http.ts';
import { createServiceMetrics } from './metrics.ts';

const TOKEN = 'token-of-sixteen-chars-or-more';

async function service(routerOptions: FastifyServerOptions['routerOptions'] = {}) {
  const app = Fastify({ logger: false, routerOptions });
  installServiceBasics(app, { service: 't', metrics: createServiceMetrics('t', { defaultMetrics: false }), readiness: () => ({ ready: true, checks: {} }), internalToken: TOKEN });
  app.post('/internal/v2/thing', async () => ({ reached: true }));
  await app.register(async (child) => {
    child.get('/admin/v1/:id', async () => ({ reached: true }));
  });
  return app;
}

describe('internal and admin routes', () => {
  it('are matched by route pattern, whatever prefix a spelling of the URL has', () => {
    for (const r of ['/internal/v2/write', '/admin/v1/replay/jobs/:id', '/Admin/x', '//internal/x', '/admin']) expect(isProtectedRoute(r), r).toBe(true);
    for (const r of ['/v2/ingest', '/healthz', '/internals', '/administrator', '/v2/internal/x']) expect(isProtectedRoute(r), r).toBe(false);
  });

  it('refuse a percent-encoded spelling without the token (the raw URL does not start with /internal/), accept it with', async () => {
    const app = await service();
    for (const url of ['/%69nternal/v2/thing', '/internal/v2/thing', '/%61dmin/v1/x']) {
      const method = url.includes('dmin') ? 'GET' : 'POST';
      const no = await app.inject({ method, url });
      expect([url, no.statusCode, no.json<{ error: { code: string } }>().error.code]).toEqual([url, 401, 'INGEST_ERR_INTERNAL_UNAUTHENTICATED']);
      const yes = await app.inject({ method, url, headers: { 'x-ingest-internal-token': TOKEN } });
      expect([url, yes.json()]).toEqual([url, { reached: true }]);
    }
    await app.close();
  });

  it('follow the match under the loosest router options too (trailing slash, case, duplicate slashes)', async () => {
    const app = await service({ ignoreTrailingSlash: true, caseSensitive: false, ignoreDuplicateSlashes: true });
    for (const url of ['/internal/v2/thing/', '/INTERNAL/v2/Thing', '//internal//v2/thing', '/%49nternal/v2/thing']) {
      const no = await app.inject({ method: 'POST', url });
      expect([url, no.statusCode]).toEqual([url, 401]);
      const yes = await app.inject({ method: 'POST', url, headers: { 'x-ingest-internal-token': TOKEN } });
      expect([url, yes.statusCode]).toEqual([url, 200]);
    }
    await app.close();
  });
});

describe('admin listener', () => {
  it('serves /metrics and /status; the public app does not; closing the app closes it, twice is fine', async () => {
    const app = await service();
    const admin = adminListener(app);
    for (const url of ['/metrics', '/status']) {
      expect((await app.inject({ method: 'GET', url })).statusCode).toBe(404);
      expect((await admin.inject({ method: 'GET', url })).statusCode).toBe(200);
    }
    await app.close();
    await app.close();
    expect(() => adminListener(Fastify())).toThrow(/installServiceBasics/);
  });
});

describe('clientErrorOf', () => {
  it.each([
    ['HPE_HEADER_OVERFLOW', 431, 'INGEST_ERR_HEADERS_TOO_LARGE'],
    ['HPE_CHUNK_EXTENSIONS_OVERFLOW', 413, 'INGEST_ERR_CHUNK_EXTENSIONS_TOO_LARGE'],
    ['ERR_HTTP_REQUEST_TIMEOUT', 408, 'INGEST_ERR_REQUEST_TIMEOUT'],
    ['HPE_INVALID_CHUNK_SIZE', 400, 'INGEST_ERR_MALFORMED_REQUEST'],
    [undefined, 400, 'INGEST_ERR_MALFORMED_REQUEST'],
  ])('%s → %d %s, not retryable', (code, status, catalog) => {
    const e = clientErrorOf(code);
    expect([e.statusCode, e.code, e.retryable]).toEqual([status, catalog, false]);
  });
});
