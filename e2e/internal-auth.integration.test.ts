import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HEADERS, ROUTES } from '@ingest/contracts';
import { runCli } from '@ingest/ingestctl';
import type { TelemetryStore } from '@ingest/storage';
import { batchOf, postIngest, rawHttp, rawRequest, startInProcessStack, type InProcessStack, type RawAnswer } from '@ingest/testkit';
import { sharedStore, tenantId } from './helpers.ts';

const TOKEN = 'a-shared-internal-secret-0123456789';

// One stack for the file: chDB keeps one data directory per process, and every test only reads or
// writes its own tenants.
let store: TelemetryStore;
let stack: InProcessStack;
beforeAll(async () => {
  store = await sharedStore();
  stack = await startInProcessStack({ store, env: { INGEST_INTERNAL_TOKEN: TOKEN } });
});
afterAll(async () => {
  await stack?.close();
  await store?.close();
});

// With INGEST_INTERNAL_TOKEN set, only our own services (and ingestctl) may call the normalizer's and
// sink writer's internal and admin routes: nobody on the network can write as an arbitrary tenant.
describe('internal routes behind INGEST_INTERNAL_TOKEN', () => {
  it('the pipeline still works end to end: each hop sends the token', async () => {
    const t = tenantId('auth');
    const key = await stack.tenant(t);
    const r = await postIngest(stack.edgeUrl, key, batchOf(10));
    expect(r.status).toBe(200);
    expect(r.body.accepted).toBe(10);
    await stack.waitLoaded();
    expect((await stack.rowStats(t)).final).toBe(10);
  });

  it('GET /v2/query reaches the sink writer with the token; a direct read without it is refused', async () => {
    const t = tenantId('authq');
    const key = await stack.tenant(t);
    expect((await postIngest(stack.edgeUrl, key, batchOf(3))).status).toBe(200);
    await stack.waitLoaded();
    const res = await fetch(new URL('/v2/query', stack.edgeUrl), { headers: { authorization: `Bearer ${key}` } });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { entries: unknown[] }).entries).toHaveLength(3);
    for (const [method, route] of [['POST', ROUTES.query], ['GET', `/admin/v1/query?tenant=${t}`], ['GET', '/admin/v1/dlq']] as const) {
      const direct = await fetch(new URL(route, stack.sinkUrl), { method, headers: { 'content-type': 'application/json', [HEADERS.tenant]: t }, ...(method === 'POST' ? { body: '{"search":""}' } : {}) });
      expect([route, direct.status]).toEqual([route, 401]);
    }
  });

  it('a direct write to the normalizer or sink writer without the token is refused with a catalog code', async () => {
    const forged = { tenant: 'victim', receivedAt: Date.now(), entries: batchOf(1) };
    for (const [url, route] of [
      [stack.config.edge.normalizerUrl, '/internal/v2/normalize'],
      [stack.sinkUrl, '/internal/v2/write'],
      [stack.sinkUrl, '/admin/v1/row-stats'],
    ] as const) {
      const res = await fetch(new URL(route, url), {
        method: route.startsWith('/admin') ? 'GET' : 'POST',
        headers: { 'content-type': 'application/json', 'x-ingest-internal-token': 'wrong-token-of-the-same-size-xxxx' },
        ...(route.startsWith('/admin') ? {} : { body: JSON.stringify({ ...forged, deadLetters: [] }) }),
      });
      expect([route, res.status, ((await res.json()) as { error: { code: string } }).error.code]).toEqual([route, 401, 'INGEST_ERR_INTERNAL_UNAUTHENTICATED']);
    }
    expect((await fetch(new URL('/healthz', stack.sinkUrl))).status).toBe(200);
  });

  it('ingestctl passes the token from its environment', async () => {
    let out = '';
    const io = (env: Record<string, string>) => ({ out: (s: string) => (out = s), err: () => undefined, env: { SINK_URL: stack.sinkUrl, ...env } });
    expect(await runCli(['query', '--tenant', 'nobody', '--count', '--json'], io({ INGEST_INTERNAL_TOKEN: TOKEN }))).toBe(0);
    expect(out).toBe('{"count":0}');
    // A missing token is the operator's configuration to fix: usage, not a failed run.
    expect(await runCli(['query', '--tenant', 'nobody', '--count', '--json'], io({}))).toBe(2);
  });
});

interface Route {
  method: string;
  path: string;
}

/**
 * Every route a service registered, from fastify's own route tree, so a route added later is
 * walked too without anyone remembering to list it here.
 */
function routesOf(app: FastifyInstance): Route[] {
  const out: Route[] = [];
  const prefixes: string[] = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const m = /^((?:│ {3}| {4})*)(?:├── |└── )(\S+)(?: \(([^)]*)\))?$/.exec(line);
    if (!m) continue;
    const depth = (m[1] ?? '').length / 4;
    const full = (prefixes[depth - 1] ?? '') + (m[2] ?? '');
    prefixes[depth] = full;
    for (const method of (m[3] ?? '').split(',').map((x) => x.trim())) if (/^[A-Z]+$/.test(method)) out.push({ method, path: full });
  }
  return out;
}

const pct = (c: string) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`;

/** Ways to write a path that a router, a proxy or a URL parser might treat as the same route. */
function spellings(path: string, origin: string): string[] {
  const rest = path.slice(1);
  const [first = '', ...others] = rest.split('/');
  const tail = others.join('/');
  const lastChar = path.length - 1;
  return [
    path,
    `/${pct(rest[0] ?? '')}${rest.slice(1)}`,
    `/${pct(rest[0] ?? '').toUpperCase()}${rest.slice(1)}`,
    `${path.slice(0, lastChar)}${pct(path[lastChar] ?? '')}`,
    path.split('').map((c) => (c === '/' ? c : pct(c))).join(''),
    `/%25${pct(rest[0] ?? '').slice(1)}${rest.slice(1)}`,
    `${origin}${path}`,
    `${origin.toUpperCase()}${path}`,
    `http://evil.example${path}`,
    `${origin}/${pct(rest[0] ?? '')}${rest.slice(1)}`,
    `/${path}`,
    path.replaceAll('/', '//'),
    `/.${path}`,
    `/${first}/.${tail ? `/${tail}` : ''}`,
    `/x/..${path}`,
    `/${first}/../${first}${tail ? `/${tail}` : ''}`,
    `/%2e${path}`,
    `/x/%2e%2e${path}`,
    path.toUpperCase(),
    `/${(rest[0] ?? '').toUpperCase()}${rest.slice(1)}`,
    `${path}/`,
    `${path}//`,
    `${path};`,
    `${path};jsessionid=1`,
    `/${first};x=1${tail ? `/${tail}` : ''}`,
    `/${first}%2F${tail}`,
    `/${first}%2f${tail}`,
    `/${rest.replaceAll('/', '%2F')}`,
    `${path}?`,
    `${path}?x=1`,
    `${path}#frag`,
    `${path}%00`,
    `${path}%`,
    `${path}%20`,
    `/${first}\\${tail}`,
    `${path}\\`,
  ];
}

/** A protected route answered without the token must be refused, not found, or never parsed. */
function refused(a: RawAnswer, method: string): boolean {
  if (method === 'HEAD') return a.status === 401 || a.status === 404 || a.status === 400;
  let code = '';
  try {
    code = (JSON.parse(a.body) as { error: { code: string } }).error.code;
  } catch {
    return false;
  }
  return (
    (a.status === 401 && code === 'INGEST_ERR_INTERNAL_UNAUTHENTICATED') ||
    (a.status === 404 && code === 'INGEST_ERR_NOT_FOUND') ||
    (a.status === 400 && code === 'INGEST_ERR_MALFORMED_REQUEST')
  );
}

describe('internal and admin routes authorise on the matched route, whatever the spelling of the URL', () => {
  it('no spelling of any internal or admin route of any service reaches a handler without the token; with it, the canonical path does', async () => {
    const services = [
      { name: 'edge', app: stack.edge, url: stack.edgeUrl },
      { name: 'normalizer', app: stack.normalizer, url: stack.config.edge.normalizerUrl },
      { name: 'sink-writer', app: stack.sink, url: stack.sinkUrl },
    ];
    const walked: string[] = [];
    const leaks: string[] = [];
    for (const svc of services) {
      const origin = new URL(svc.url).origin;
      const host = new URL(svc.url).host;
      const protectedRoutes = routesOf(svc.app).filter((r) => /^\/(internal|admin)\//.test(r.path));
      for (const r of protectedRoutes) {
        const path = r.path.replace(/:[A-Za-z0-9_]+/g, 'x');
        const body = r.method === 'POST' || r.method === 'PUT' || r.method === 'PATCH' ? JSON.stringify({ tenant: 'victim', receivedAt: 1, entries: [], deadLetters: [] }) : undefined;
        const json: Record<string, string> = body === undefined ? {} : { 'content-type': 'application/json' };
        for (const target of spellings(path, origin)) {
          const a = await rawRequest(svc.url, rawHttp(r.method, target, host, json, body));
          if (!refused(a, r.method)) leaks.push(`${svc.name} ${r.method} ${target} → ${a.status} ${a.body.slice(0, 120)}`);
          const wrong = await rawRequest(svc.url, rawHttp(r.method, target, host, { ...json, 'x-ingest-internal-token': 'wrong-token-of-the-same-size-xxxx' }, body));
          if (!refused(wrong, r.method)) leaks.push(`${svc.name} ${r.method} ${target} (wrong token) → ${wrong.status} ${wrong.body.slice(0, 120)}`);
        }
        walked.push(`${svc.name} ${r.method} ${r.path}`);
        if (r.method === 'HEAD') continue;
        const ok = await rawRequest(svc.url, rawHttp(r.method, path, host, { ...json, 'x-ingest-internal-token': TOKEN }, body));
        const code = ok.body.startsWith('{') ? (JSON.parse(ok.body) as { error?: { code: string; message: string } }).error : undefined;
        expect([svc.name, r.method, path, ok.status === 401 || (code?.code === 'INGEST_ERR_NOT_FOUND' && code.message.startsWith('no route'))]).toEqual([svc.name, r.method, path, false]);
      }
    }
    expect(leaks).toEqual([]);
    // The walk covered the hop routes and every replay/shadow admin route, not an empty list.
    const replay = ['/admin/v1/replay/jobs', '/admin/v1/replay/jobs/:id', '/admin/v1/shadow/diff', '/admin/v1/shadow/promote', '/admin/v1/shadow/drop'];
    for (const p of [ROUTES.normalize, ROUTES.write, ROUTES.query, '/admin/v1/query', '/admin/v1/dlq', ...replay, '/admin/v1/count', '/admin/v1/row-stats', '/admin/v1/lag', '/admin/v1/count-buckets', '/admin/v1/sql']) {
      expect(walked.some((w) => w.endsWith(` ${p}`))).toBe(true);
    }
  });

  it('/metrics and /status are not served on any public port (404 with the error body); the admin listener serves them', async () => {
    const services = [
      { pub: stack.edgeUrl, admin: stack.edgeAdminUrl },
      { pub: stack.config.edge.normalizerUrl, admin: stack.normalizerAdminUrl },
      { pub: stack.sinkUrl, admin: stack.sinkAdminUrl },
    ];
    for (const s of services) {
      for (const p of ['/metrics', '/status']) {
        const pub = await fetch(new URL(p, s.pub));
        expect([s.pub, p, pub.status]).toEqual([s.pub, p, 404]);
        expect(((await pub.json()) as { error: { code: string; retryable: boolean } }).error).toMatchObject({ code: 'INGEST_ERR_NOT_FOUND', retryable: false });
        const admin = await fetch(new URL(p, s.admin));
        expect([s.admin, p, admin.status]).toEqual([s.admin, p, 200]);
        await admin.arrayBuffer();
      }
      for (const p of ['/healthz', '/readyz']) expect((await fetch(new URL(p, s.pub))).status).toBe(200);
    }
    // The admin listener is a listener of its own, on loopback.
    expect(new URL(stack.edgeAdminUrl).port).not.toBe(new URL(stack.edgeUrl).port);
  });

  it('requests the HTTP parser refuses are answered with the catalog error body and a proper status, on every service', async () => {
    const cases: Array<{ name: string; raw: (host: string) => string; status: number; code: string }> = [
      { name: 'Content-Length and Transfer-Encoding', raw: (h) => `POST /v2/ingest HTTP/1.1\r\nHost: ${h}\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, status: 400, code: 'INGEST_ERR_MALFORMED_REQUEST' },
      { name: 'two Content-Lengths', raw: (h) => `POST /v2/ingest HTTP/1.1\r\nHost: ${h}\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde`, status: 400, code: 'INGEST_ERR_MALFORMED_REQUEST' },
      { name: 'headers over the limit', raw: (h) => `GET /healthz HTTP/1.1\r\nHost: ${h}\r\nx-big: ${'a'.repeat(64 * 1024)}\r\n\r\n`, status: 431, code: 'INGEST_ERR_HEADERS_TOO_LARGE' },
      { name: 'CR inside a header value', raw: (h) => `GET /healthz HTTP/1.1\r\nHost: ${h}\r\nx-a: one\rtwo\r\n\r\n`, status: 400, code: 'INGEST_ERR_MALFORMED_REQUEST' },
      { name: 'LF inside a header name', raw: (h) => `GET /healthz HTTP/1.1\r\nHost: ${h}\r\nx-\na: 1\r\n\r\n`, status: 400, code: 'INGEST_ERR_MALFORMED_REQUEST' },
      { name: 'bad chunk size', raw: (h) => `POST /nowhere HTTP/1.1\r\nHost: ${h}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`, status: 400, code: 'INGEST_ERR_MALFORMED_REQUEST' },
      { name: 'chunk extensions over the limit', raw: (h) => `POST /nowhere HTTP/1.1\r\nHost: ${h}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n2;${'e'.repeat(32 * 1024)}\r\n{}\r\n0\r\n\r\n`, status: 413, code: 'INGEST_ERR_CHUNK_EXTENSIONS_TOO_LARGE' },
      { name: 'garbage request line', raw: () => 'HELLO\r\n\r\n', status: 400, code: 'INGEST_ERR_MALFORMED_REQUEST' },
      { name: 'URL that does not percent-decode', raw: (h) => `GET /%zz HTTP/1.1\r\nHost: ${h}\r\nConnection: close\r\n\r\n`, status: 400, code: 'INGEST_ERR_MALFORMED_REQUEST' },
    ];
    const urls = [stack.edgeUrl, stack.config.edge.normalizerUrl, stack.sinkUrl, stack.edgeAdminUrl, stack.sinkAdminUrl];
    for (const url of urls) {
      for (const c of cases) {
        const a = await rawRequest(url, c.raw(new URL(url).host));
        const body = JSON.parse(a.body) as { error: { code: string; message: string; retryable: boolean } };
        expect([url, c.name, a.status, body.error.code, body.error.retryable, typeof body.error.message]).toEqual([url, c.name, c.status, c.code, false, 'string']);
        expect(a.headers['content-type']).toMatch(/^application\/json/);
      }
    }
  });
});
