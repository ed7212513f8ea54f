import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '@ingest/config';
import { addTenantKey, setTenantRoute } from '@ingest/tenants';
import { buildEdge } from '../app.ts';
import { adminListener } from '@ingest/observability';
import { decide, type CutoverOptions } from './gate.ts';
import { LB_SECRET_HEADER } from './trusted-hop.ts';

describe('decide', () => {
  it('no migration configured: everything live; mirror copies always to the mirror table, never live', () => {
    expect(decide(undefined, false)).toBe('live');
    expect(decide(undefined, true)).toBe('mirror');
  });
  it('only a cut-over tenant is live; mirrored and legacy tenants go to legacy; a copy is mirror whatever the state', () => {
    expect(decide('v2', false)).toBe('live');
    expect(decide('mirror', false)).toBe('legacy');
    expect(decide('legacy', false)).toBe('legacy');
    for (const r of ['v2', 'mirror', 'legacy'] as const) expect(decide(r, true)).toBe('mirror');
  });
});

interface Seen {
  version: string | undefined;
  mirror: string | undefined;
  forwardedBy: string | undefined;
  lbSecret?: string | undefined;
  body: string;
}

const LB_SECRET = 'the-load-balancers-own-secret-42';

/** A real HTTP server standing in for the normalizer or legacy, recording what reached it. */
async function recorder(answer: (seen: Seen) => { status: number; body: unknown }, delayMs = 0): Promise<{ url: string; seen: Seen[]; app: FastifyInstance }> {
  const seen: Seen[] = [];
  const app = Fastify({ logger: false });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_r, body, done) => done(null, body));
  app.post('/*', async (req, reply) => {
    const s: Seen = {
      version: req.headers['x-ingest-version'] as string | undefined,
      mirror: req.headers['x-ingest-mirror'] as string | undefined,
      forwardedBy: req.headers['x-ingest-forwarded-by'] as string | undefined,
      ...(req.headers[LB_SECRET_HEADER] !== undefined ? { lbSecret: req.headers[LB_SECRET_HEADER] as string } : {}),
      body: typeof req.body === 'string' ? req.body : JSON.stringify(req.body),
    };
    seen.push(s);
    const a = answer(s);
    if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
    return reply.code(a.status).send(a.body);
  });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return { url, seen, app };
}

const closers: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

async function setup(o: { legacy?: boolean; file?: boolean; maxLegacyInflight?: number; bodyLimit?: string; legacyDelayMs?: number; env?: Record<string, string> } = {}) {
  const dir = await mkdtemp(path.join(tmpdir(), 'edge-cutover-'));
  const normalizer = await recorder(() => ({ status: 200, body: { accepted: 1, rejected: [] } }));
  closers.push(() => normalizer.app.close());
  const legacy = await recorder(() => ({ status: 202, body: { legacy: true } }), o.legacyDelayMs ?? 0);
  closers.push(() => legacy.app.close());
  const config = loadConfig({ INGEST_DATA_DIR: dir, NORMALIZER_URL: normalizer.url, ...(o.bodyLimit ? { EDGE_BODY_LIMIT: o.bodyLimit } : {}), ...o.env }).edge;
  const files = { tenantsFile: config.tenantsFile, cutoverFile: path.join(dir, 'cutover.json') };
  const { apiKey: v2Key } = await addTenantKey(files.tenantsFile, 'cut');
  const { apiKey: oldKey } = await addTenantKey(files.tenantsFile, 'old');
  if (o.file !== false) await setTenantRoute(files, 'cut', 'v2');
  const cutover: CutoverOptions = { file: files.cutoverFile, reloadMs: 50, ...(o.legacy !== false ? { legacyUrl: legacy.url } : {}), ...(o.maxLegacyInflight ? { maxLegacyInflight: o.maxLegacyInflight } : {}) };
  const edge = await buildEdge({ config, logger: false, cutover });
  closers.push(() => edge.close());
  const post = (key: string, headers: Record<string, string> = {}, payload = '[{"type":"log","timestamp":1,"data":{"message":"m"}}]', remoteAddress = '203.0.113.7') =>
    edge.inject({ method: 'POST', url: '/v2/ingest', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers }, payload, remoteAddress });
  return { edge, normalizer, legacy, files, v2Key, oldKey, post };
}

describe('the edge enforces the cut-over set', () => {
  it('a cut-over tenant is taken live, with the version the edge decided, not the one the client sent', async () => {
    const s = await setup();
    const r = await s.post(s.v2Key, { 'x-ingest-version': 'v9' });
    expect(r.statusCode).toBe(200);
    expect(s.normalizer.seen.map((x) => x.version)).toEqual(['v2']);
    expect(s.legacy.seen).toEqual([]);
  });

  it('a v2-headed request for a tenant not cut over is forwarded to legacy whole, and legacy answers it', async () => {
    const s = await setup();
    const body = '[{"id":"x1","type":"log","timestamp":1,"data":{"message":"hello"}}]';
    const r = await s.post(s.oldKey, { 'x-ingest-version': 'v2' }, body);
    expect(r.statusCode).toBe(202);
    expect(r.json()).toEqual({ legacy: true });
    expect(r.headers['x-ingest-route']).toBe('legacy');
    expect(s.legacy.seen).toEqual([{ version: undefined, mirror: undefined, forwardedBy: 'edge', body }]);
    expect(s.normalizer.seen).toEqual([]);
  });

  it('a mirror copy from the load balancer (shared secret) goes down the v2 path marked for the mirror table, whatever the tenant state', async () => {
    const s = await setup({ env: { LB_SHARED_SECRET: LB_SECRET } });
    expect((await s.post(s.oldKey, { 'x-ingest-mirror': '1', [LB_SECRET_HEADER]: LB_SECRET })).statusCode).toBe(200);
    expect((await s.post(s.v2Key, { 'x-ingest-mirror': '1', [LB_SECRET_HEADER]: LB_SECRET })).statusCode).toBe(200);
    expect(s.normalizer.seen.map((x) => x.version)).toEqual(['v2-mirror', 'v2-mirror']);
    expect(s.legacy.seen).toEqual([]);
  });

  it('a producer cannot mark its own traffic as mirrored: without the secret, or with a wrong one, x-ingest-mirror is ignored and entries go live', async () => {
    const s = await setup({ env: { LB_SHARED_SECRET: LB_SECRET } });
    expect((await s.post(s.v2Key, { 'x-ingest-mirror': '1' })).statusCode).toBe(200);
    expect((await s.post(s.v2Key, { 'x-ingest-mirror': '1', [LB_SECRET_HEADER]: 'x'.repeat(LB_SECRET.length) })).statusCode).toBe(200);
    // Forged from 127.0.0.1 too: a loopback peer is not trusted unless TRUSTED_PROXIES says so.
    expect((await s.post(s.v2Key, { 'x-ingest-mirror': '1' }, undefined, '127.0.0.1')).statusCode).toBe(200);
    expect(s.normalizer.seen.map((x) => x.version)).toEqual(['v2', 'v2', 'v2']);
    // Nothing configured: nobody is trusted.
    const open = await setup();
    expect((await open.post(open.v2Key, { 'x-ingest-mirror': '1', [LB_SECRET_HEADER]: LB_SECRET })).statusCode).toBe(200);
    expect(open.normalizer.seen.map((x) => x.version)).toEqual(['v2']);
  });

  it('a peer in TRUSTED_PROXIES (socket address, not X-Forwarded-For) may mark a mirror copy; anyone else may not', async () => {
    const s = await setup({ env: { TRUSTED_PROXIES: '10.1.0.0/16, 192.0.2.1' } });
    expect((await s.post(s.v2Key, { 'x-ingest-mirror': '1' }, undefined, '10.1.2.3')).statusCode).toBe(200);
    expect((await s.post(s.v2Key, { 'x-ingest-mirror': '1' }, undefined, '::ffff:192.0.2.1')).statusCode).toBe(200);
    expect((await s.post(s.v2Key, { 'x-ingest-mirror': '1', 'x-forwarded-for': '10.1.2.3' }, undefined, '10.2.0.1')).statusCode).toBe(200);
    expect(s.normalizer.seen.map((x) => x.version)).toEqual(['v2-mirror', 'v2-mirror', 'v2']);
  });

  it('the secret never travels on to legacy (the edge drops it once checked)', async () => {
    const s = await setup({ env: { LB_SHARED_SECRET: LB_SECRET } });
    expect((await s.post(s.oldKey, { [LB_SECRET_HEADER]: LB_SECRET })).statusCode).toBe(202);
    expect(s.legacy.seen.map((x) => x.lbSecret)).toEqual([undefined]);
  });

  it('rollback takes effect at the edge within its poll interval', async () => {
    const s = await setup();
    expect((await s.post(s.v2Key)).statusCode).toBe(200);
    await setTenantRoute(s.files, 'cut', 'legacy');
    const deadline = Date.now() + 2000;
    let status = 0;
    while (Date.now() < deadline) {
      status = (await s.post(s.v2Key)).statusCode;
      if (status === 202) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(status).toBe(202);
    const snap = (await adminListener(s.edge).inject({ method: 'GET', url: '/status' })).json<{ cutover: { generation: number; enforcing: boolean } }>().cutover;
    expect(snap).toMatchObject({ generation: 2, enforcing: true });
  });

  it('legacy down: 503 with Retry-After, never a fallback to v2', async () => {
    const s = await setup();
    await s.legacy.app.close();
    const r = await s.post(s.oldKey);
    expect(r.statusCode).toBe(503);
    expect(r.headers['retry-after']).toBe('1');
    expect(r.json<{ error: { code: string } }>().error.code).toBe('INGEST_ERR_DEPENDENCY_UNAVAILABLE');
    expect(s.normalizer.seen).toEqual([]);
  });

  it('a set but no legacy pipeline configured: a tenant not cut over is refused (503), not taken', async () => {
    const s = await setup({ legacy: false });
    const r = await s.post(s.oldKey);
    expect(r.statusCode).toBe(503);
    expect(r.json<{ error: { message: string } }>().error.message).toMatch(/LEGACY_URL unset/);
    expect(s.normalizer.seen).toEqual([]);
    expect((await s.post(s.v2Key)).statusCode).toBe(200);
  });

  it('no legacy pipeline: removing the last cut-over tenant returns the edge to taking everything (an empty set is no migration)', async () => {
    const s = await setup({ legacy: false });
    expect((await s.post(s.oldKey)).statusCode).toBe(503);
    await setTenantRoute(s.files, 'cut', 'legacy');
    const deadline = Date.now() + 2000;
    let codes: number[] = [];
    while (Date.now() < deadline) {
      codes = [(await s.post(s.v2Key)).statusCode, (await s.post(s.oldKey)).statusCode];
      if (codes.every((c) => c === 200)) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(codes).toEqual([200, 200]);
    const snap = (await adminListener(s.edge).inject({ method: 'GET', url: '/status' })).json<{ cutover: { generation: number; enforcing: boolean } }>().cutover;
    expect(snap).toMatchObject({ generation: 2, enforcing: false });
    expect(s.legacy.seen).toEqual([]);
  });

  it('/status (admin listener) says whether LEGACY_URL is configured and reachable from this edge', async () => {
    const s = await setup();
    type Snap = { cutover: { legacy: { configured: boolean; reachable: boolean | null; error?: string } } };
    const status = async () => (await adminListener(s.edge).inject({ method: 'GET', url: '/status' })).json<Snap>().cutover.legacy;
    expect(await status()).toMatchObject({ configured: true, reachable: true });
    await s.legacy.app.close();
    // Probes are cached for a second: wait for one that sees legacy gone, with a bound.
    const deadline = Date.now() + 5000;
    let got = await status();
    while (got.reachable !== false && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      got = await status();
    }
    expect(got).toMatchObject({ configured: true, reachable: false });
    expect(got.error).toBeDefined();

    const none = await setup({ legacy: false });
    const snap = (await adminListener(none.edge).inject({ method: 'GET', url: '/status' })).json<Snap>().cutover.legacy;
    expect(snap).toMatchObject({ configured: false, reachable: null, error: 'LEGACY_URL is not set' });
  });

  it('no set and no legacy pipeline: the edge behaves as before cutover (everything v2)', async () => {
    const s = await setup({ legacy: false, file: false });
    expect((await s.post(s.oldKey)).statusCode).toBe(200);
    expect(s.normalizer.seen.map((x) => x.version)).toEqual(['v2']);
  });

  it('a body over the limit is refused with 413 rather than streamed to legacy without bound', async () => {
    const s = await setup({ bodyLimit: '1KiB' });
    const big = JSON.stringify([{ type: 'log', timestamp: 1, data: { message: 'x'.repeat(4000) } }]);
    const r = await s.post(s.oldKey, {}, big);
    expect(r.statusCode).toBe(413);
  });

  it('requests forwarded to legacy are bounded: one over LEGACY_MAX_INFLIGHT is shed with 503, not queued', async () => {
    const s = await setup({ maxLegacyInflight: 2, legacyDelayMs: 300 });
    const r = await Promise.all([s.post(s.oldKey), s.post(s.oldKey), s.post(s.oldKey)]);
    expect(r.map((x) => x.statusCode).sort()).toEqual([202, 202, 503]);
    const shed = r.find((x) => x.statusCode === 503);
    expect(shed?.json<{ error: { code: string } }>().error.code).toBe('INGEST_ERR_EDGE_OVERLOADED');
    expect(shed?.headers['retry-after']).toBe('1');
  });

  it('a broken set file keeps the last good set', async () => {
    const s = await setup();
    await writeFile(s.files.cutoverFile, '{ not json');
    await new Promise((r) => setTimeout(r, 150));
    expect((await s.post(s.v2Key)).statusCode).toBe(200);
    expect((await s.post(s.oldKey)).statusCode).toBe(202);
    const snap = (await adminListener(s.edge).inject({ method: 'GET', url: '/status' })).json<{ cutover: { error?: string } }>().cutover;
    expect(snap.error).toBeDefined();
  });
});
