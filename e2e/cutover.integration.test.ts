import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildEdge } from '@ingest/edge';
import { adminListener } from '@ingest/observability';
import type { TelemetryStore } from '@ingest/storage';
import { addTenantKey, setTenantRoute } from '@ingest/tenants';
import { postIngest, waitUntil, startInProcessStack, startLegacyFixture, startNginx, type InProcessStack, type LegacyFixture, type NginxHandle } from '@ingest/testkit';
// ingestctl is not a dependency of the repo root; the CLI is driven in-process by its entry point.
import { EXIT, runCli } from '@ingest/ingestctl';
import { sharedStore, tenantId } from './helpers.ts';

// Integration tests with nginx keep to ports 18800–18899.
const NGINX_PORT = Number(process.env['NGINX_PORT'] ?? 18871);
/** Shared by nginx and the edge: only requests carrying it may mark themselves as mirror copies. */
const LB_SECRET = 'cutover-test-lb-secret-0123456789';
const TYPES = ['log', 'metric', 'event'] as const;

/** A batch with fresh ids, cycling through three types so parity has more than one row per hour. */
function batch(n: number): Array<Record<string, unknown>> {
  return Array.from({ length: n }, (_, i) => {
    const type = TYPES[i % TYPES.length];
    const data = type === 'log' ? { level: 'info', message: `m${i}` } : type === 'metric' ? { name: 'cutover.test', value: i, unit: 'ms' } : { name: 'cutover.event' };
    return { id: randomUUID(), type, timestamp: Date.now(), app: 'cutover', data };
  });
}

const idsOf = (b: Array<Record<string, unknown>>): string[] => b.map((e) => e['id'] as string);

let store: TelemetryStore;
let stack: InProcessStack;
let legacy: LegacyFixture;
let edge: FastifyInstance;
let edgeUrl: string;
let edgeAdminUrl: string;
let nginx: NginxHandle;
let cutoverFile: string;

async function ctl(...argv: string[]): Promise<{ code: number; out: string; err: string; json: Record<string, unknown> }> {
  const out: string[] = [];
  const err: string[] = [];
  const env = {
    INGEST_DATA_DIR: stack.dataDir,
    TENANTS_FILE: stack.config.edge.tenantsFile,
    ...nginx.env,
    // The cut-over generation is in the edge's /status, served on its admin listener.
    CUTOVER_EDGE_URLS: edgeAdminUrl,
    LEGACY_COUNT_URL: legacy.countUrl,
    SINK_URL: stack.sinkUrl,
  };
  const code = await runCli(argv, { out: (s) => out.push(s), err: (s) => err.push(s), env });
  const text = out.join('\n');
  let json: Record<string, unknown> = {};
  if (argv.includes('--json')) json = JSON.parse(text) as Record<string, unknown>;
  return { code, out: text, err: err.join('\n'), json };
}

async function flip(cmd: 'add' | 'remove' | 'mirror', tenant: string): Promise<void> {
  const r = await ctl('cutover', cmd, tenant, '--json');
  expect(r.code, r.err).toBe(0);
}

/** A tenant with a key both edges (and the legacy fixture, which reads the same file) accept. */
async function newTenant(prefix: string): Promise<{ id: string; key: string }> {
  const id = tenantId(prefix);
  const { apiKey } = await addTenantKey(stack.config.edge.tenantsFile, id);
  // A mirror-marked probe with a bad content type: 415 once the key is known, 401 before; it is
  // refused before anything is written, and never forwarded to legacy.
  await waitUntil(
    `key for ${id} picked up by the edge`,
    async () => (await edge.inject({ method: 'POST', url: '/v2/ingest', headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'text/plain', 'x-ingest-mirror': '1' }, payload: 'x' })).statusCode !== 401,
    5000,
    25,
  );
  return { id, key: apiKey };
}

async function liveIds(tenant: string, table: 'telemetry' | 'telemetry_mirror' = 'telemetry'): Promise<Set<string>> {
  const rs = await store.client.query({ query: `SELECT id FROM ${table} FINAL WHERE tenant_id = {t:String}`, query_params: { t: tenant }, format: 'JSONEachRow' });
  const ids = (await rs.json<{ id: string }>()).map((r) => r.id);
  const set = new Set(ids);
  // A Set alone would hide a duplicate at rest; exactly-once is a count.
  expect(set.size, `duplicate ids at rest in ${table} for ${tenant}`).toBe(ids.length);
  return set;
}

async function waitShadow(tenant: string, n: number, timeoutMs = 30_000): Promise<number> {
  let got = 0;
  // On timeout the count so far is returned: the caller's assertion names what was missing.
  await waitUntil(`${n} mirror rows of ${tenant}`, async () => (got = (await liveIds(tenant, 'telemetry_mirror')).size) >= n, timeoutMs, 100).catch(() => undefined);
  return got;
}

beforeAll(async () => {
  store = await sharedStore();
  stack = await startInProcessStack({ store });
  legacy = await startLegacyFixture({ tenantsFile: stack.config.edge.tenantsFile });
  cutoverFile = `${stack.dataDir}/cutover.json`;
  // An edge that enforces the cut-over set and forwards to the legacy fixture (the stack's own edge
  // runs with no migration configured and is not used here).
  const config = { ...stack.config.edge, trustedHops: { sharedSecret: LB_SECRET, proxies: [] } };
  edge = await buildEdge({ config, logger: false, tenantsReloadMs: 100, cutover: { file: cutoverFile, legacyUrl: legacy.url, reloadMs: 100 } });
  edgeUrl = await edge.listen({ host: '127.0.0.1', port: 0 });
  edgeAdminUrl = await adminListener(edge).listen({ host: '127.0.0.1', port: 0 });
  const edgePort = (edge.server.address() as AddressInfo).port;
  const legacyPort = (legacy.app.server.address() as AddressInfo).port;
  nginx = await startNginx({ port: NGINX_PORT, edgeUpstream: `127.0.0.1:${edgePort}`, legacyUpstream: `127.0.0.1:${legacyPort}`, lbSecret: LB_SECRET });
  // Start from an empty rendered map whatever an earlier run left in the nginx run dir.
  const sync = await ctl('cutover', 'sync');
  expect(sync.code, sync.err).toBe(0);
});

afterAll(async () => {
  await nginx?.stop();
  await edge?.close();
  await legacy?.close();
  await stack?.close();
  await store?.close();
});

describe('v2 cutover through a real nginx', () => {
  it('A cut over lands only in v2; B not cut over lands only in legacy; C mirrored lands in both with parity', async () => {
    const a = await newTenant('cut-a');
    const b = await newTenant('cut-b');
    const c = await newTenant('cut-c');
    await flip('add', a.id);
    await flip('mirror', c.id);

    const sent = new Map<string, string[]>([[a.id, []], [b.id, []], [c.id, []]]);
    for (let i = 0; i < 3; i++) {
      for (const t of [a, b, c]) {
        const entries = batch(30);
        const r = await postIngest(nginx.url, t.key, entries);
        expect(r.status, JSON.stringify(r.body)).toBe(200);
        expect(r.body.accepted).toBe(30);
        sent.get(t.id)?.push(...idsOf(entries));
      }
    }
    await stack.waitLoaded();

    // A: all in v2 live, none at legacy.
    expect(await liveIds(a.id)).toEqual(new Set(sent.get(a.id)));
    expect(legacy.ids(a.id).size).toBe(0);
    // B: all at legacy, nothing in v2 (live or mirror).
    expect(legacy.ids(b.id)).toEqual(new Set(sent.get(b.id)));
    expect((await liveIds(b.id)).size).toBe(0);
    expect((await liveIds(b.id, 'telemetry_mirror')).size).toBe(0);
    // C: legacy authoritative, v2 holds the copy in the mirror table only.
    expect(legacy.ids(c.id)).toEqual(new Set(sent.get(c.id)));
    expect(await waitShadow(c.id, 90)).toBe(90);
    expect(await liveIds(c.id, 'telemetry_mirror')).toEqual(new Set(sent.get(c.id)));
    expect((await liveIds(c.id)).size).toBe(0);
    // Neither the LB nor the edge ever tells legacy about v2.
    expect(legacy.requests().filter((r) => r.version !== undefined)).toEqual([]);

    const st = await ctl('cutover', 'status', c.id, '--json', '--hours', '2');
    expect(st.code, st.err).toBe(0);
    const parity = st.json['parity'] as { match: boolean; totals: { legacy: number; v2: number } };
    expect(st.json['route']).toBe('mirror');
    expect(st.json['v2Table']).toBe('telemetry_mirror');
    expect(parity).toMatchObject({ match: true, totals: { legacy: 90, v2: 90 } });
    const rows = st.json['rows'] as Array<{ type: string; legacy: number; v2: number }>;
    for (const type of TYPES) expect(rows.filter((r) => r.type === type).reduce((s, r) => s + r.v2, 0)).toBe(30);
    const human = await ctl('cutover', 'status', c.id);
    expect(human.out).toMatch(/parity: OK — 90 legacy, 90 v2/);

    const list = await ctl('cutover', 'list', '--json');
    const listed = (list.json['tenants'] as Array<{ tenant: string; state: string }>).map((t) => [t.tenant, t.state]);
    expect(listed).toEqual(expect.arrayContaining([[a.id, 'v2'], [c.id, 'mirror']]));
    expect(listed.find(([t]) => t === b.id)).toBeUndefined();
  });

  it('flipping B to v2 routes its very next request to v2; removing A sends its very next request to legacy', async () => {
    const a = await newTenant('flip-a');
    const b = await newTenant('flip-b');
    await flip('add', a.id);

    await flip('add', b.id);
    const toV2 = batch(10);
    const r1 = await postIngest(nginx.url, b.key, toV2);
    expect(r1.status).toBe(200);
    expect(r1.headers.get('x-ingest-route')).toBe('v2');

    await flip('remove', a.id);
    const toLegacy = batch(10);
    const r2 = await postIngest(nginx.url, a.key, toLegacy);
    expect(r2.status).toBe(200);
    expect(r2.headers.get('x-ingest-route')).toBe('legacy');

    await stack.waitLoaded();
    expect(await liveIds(b.id)).toEqual(new Set(idsOf(toV2)));
    expect(legacy.ids(b.id).size).toBe(0);
    expect(legacy.ids(a.id)).toEqual(new Set(idsOf(toLegacy)));
    expect((await liveIds(a.id)).size).toBe(0);
  });

  it('the edge enforces the set: v2-headed requests for a tenant not cut over go to legacy whole, mirror copies only to the mirror table', async () => {
    const d = await newTenant('enf-d');
    // Straight at the edge, claiming v2: forwarded to legacy, answered by legacy.
    const claimed = batch(12);
    const r = await postIngest(edgeUrl, d.key, claimed, { headers: { 'x-ingest-version': 'v2' } });
    expect(r.status).toBe(200);
    expect(r.headers.get('x-ingest-route')).toBe('legacy');
    expect(legacy.ids(d.id)).toEqual(new Set(idsOf(claimed)));

    // The LB still runs an older set (cut over) while the file says legacy: the edge forwards.
    await flip('add', d.id);
    await setTenantRoute({ tenantsFile: stack.config.edge.tenantsFile, cutoverFile }, d.id, 'legacy');
    const deadline = Date.now() + 3000;
    let stale: Awaited<ReturnType<typeof postIngest>> | undefined;
    const staleIds: string[] = [];
    while (Date.now() < deadline) {
      const entries = batch(5);
      stale = await postIngest(nginx.url, d.key, entries);
      staleIds.push(...idsOf(entries));
      if (stale.headers.get('x-ingest-route')?.includes('legacy')) break;
    }
    expect(stale?.status).toBe(200);
    // Both the edge (legacy) and nginx (its stale v2) say where they sent it.
    expect(stale?.headers.get('x-ingest-route')).toMatch(/legacy/);
    expect(legacy.requests().some((x) => x.tenant === d.id && x.viaEdge)).toBe(true);

    // A mirror copy (marked by a trusted hop: it carries the LB's secret) never reaches live, whatever the tenant's state.
    const copy = batch(4);
    expect((await postIngest(edgeUrl, d.key, copy, { headers: { 'x-ingest-mirror': '1', 'x-ingest-lb-secret': LB_SECRET } })).status).toBe(200);
    await stack.waitLoaded();
    expect(await waitShadow(d.id, 4)).toBe(4);
    const live = await liveIds(d.id);
    for (const id of idsOf(copy)) expect(live.has(id)).toBe(false);
    // Whatever the edge kept live from the stale window was cut over at the time; nothing is in both.
    const leg = legacy.ids(d.id);
    for (const id of staleIds) expect(live.has(id) && leg.has(id)).toBe(false);
    await ctl('cutover', 'sync');
  });

  it('a producer cannot mark its own traffic as mirrored: its x-ingest-mirror (straight at the edge, or through nginx) is ignored and entries land in live', async () => {
    const e = await newTenant('forge-e');
    await flip('add', e.id);
    const direct = batch(5);
    const r1 = await postIngest(edgeUrl, e.key, direct, { headers: { 'x-ingest-mirror': '1', 'x-ingest-version': 'v2-mirror' } });
    expect(r1.status, JSON.stringify(r1.body)).toBe(200);
    const wrongSecret = batch(5);
    expect((await postIngest(edgeUrl, e.key, wrongSecret, { headers: { 'x-ingest-mirror': '1', 'x-ingest-lb-secret': 'x'.repeat(LB_SECRET.length) } })).status).toBe(200);
    // nginx overwrites the producer's marking with its own ("" for a cut-over tenant).
    const viaLb = batch(5);
    expect((await postIngest(nginx.url, e.key, viaLb, { headers: { 'x-ingest-mirror': '1' } })).status).toBe(200);
    await stack.waitLoaded();
    const live = await liveIds(e.id);
    for (const id of [...idsOf(direct), ...idsOf(wrongSecret), ...idsOf(viaLb)]) expect(live.has(id)).toBe(true);
    expect((await liveIds(e.id, 'telemetry_mirror')).size).toBe(0);
    await ctl('cutover', 'sync');
  });

  it('under continuous load across several flips, every 2xx is in exactly one authoritative place', async () => {
    const ts = await Promise.all([newTenant('load-1'), newTenant('load-2'), newTenant('load-3')]);
    const records: Array<{ tenant: string; ids: string[]; status: number }> = [];
    let stop = false;
    const producer = async (w: number): Promise<void> => {
      // Bounded in count and time: stops on the flag or after 3,000 requests.
      for (let i = 0; i < 3000 && !stop; i++) {
        const t = ts[(i + w) % ts.length] as { id: string; key: string };
        const entries = batch(8);
        let status = 0;
        try {
          status = (await postIngest(nginx.url, t.key, entries)).status;
        } catch {
          status = 0;
        }
        records.push({ tenant: t.id, ids: idsOf(entries), status });
      }
    };
    const [t1, t2, t3] = ts.map((t) => t.id) as [string, string, string];
    const producers = Promise.all([0, 1, 2, 3].map(producer));
    const flips: Array<['add' | 'remove' | 'mirror', string]> = [
      ['add', t1],
      ['mirror', t2],
      ['add', t3],
      ['remove', t1],
      ['add', t2],
      ['remove', t3],
      ['add', t1],
      ['mirror', t3],
      ['remove', t2],
      ['remove', t1],
    ];
    try {
      // Between flips, wait for traffic rather than a clock: each flip then falls among answered requests.
      const moreAnswers = (n: number) => {
        const target = records.length + n;
        return waitUntil(`${n} more answered requests`, () => records.length >= target);
      };
      for (const [cmd, t] of flips) {
        await moreAnswers(5);
        await flip(cmd, t);
      }
      await moreAnswers(5);
    } finally {
      stop = true;
      await producers;
    }
    await stack.waitLoaded();

    const ok = records.filter((r) => r.status >= 200 && r.status < 300);
    expect(ok.length).toBeGreaterThan(100);
    // Failures are allowed only as explicit refusals/resets around a reload, never as most of the traffic.
    expect(ok.length / records.length).toBeGreaterThan(0.9);
    let inLegacy = 0;
    let inV2 = 0;
    for (const t of [t1, t2, t3]) {
      const leg = legacy.ids(t);
      const live = await liveIds(t);
      for (const r of records.filter((x) => x.tenant === t)) {
        const whereEach = r.ids.map((id) => (leg.has(id) ? 1 : 0) + (live.has(id) ? 2 : 0));
        // Never in both, for any request, answered or not.
        expect(whereEach.filter((w) => w === 3)).toEqual([]);
        if (r.status >= 200 && r.status < 300) {
          // Every accepted entry is somewhere, and a request is never split between the two.
          expect(whereEach.every((w) => w === 1) || whereEach.every((w) => w === 2), JSON.stringify(whereEach)).toBe(true);
          if (whereEach[0] === 1) inLegacy++;
          else inV2++;
        }
      }
    }
    // The flips really moved traffic both ways.
    expect(inLegacy).toBeGreaterThan(0);
    expect(inV2).toBeGreaterThan(0);
    expect(inLegacy + inV2).toBe(ok.length);
  });
});

describe('an edge without LEGACY_URL (issue 14: one `cutover add` shed every other tenant)', () => {
  it('add is refused while it would shed; forced, it does shed; removing the last tenant returns the edge to taking everyone', async () => {
    // A second real edge with no legacy pipeline, on a set file of its own (the LB is not involved).
    const ownSet = `${stack.dataDir}/cutover-no-legacy.json`;
    const lone = await buildEdge({ config: stack.config.edge, logger: false, tenantsReloadMs: 100, cutover: { file: ownSet, reloadMs: 100 } });
    try {
      const loneUrl = await lone.listen({ host: '127.0.0.1', port: 0 });
      // ingestctl asks the edge's admin listener (/status) whether it can reach legacy.
      const loneAdmin = await adminListener(lone).listen({ host: '127.0.0.1', port: 0 });
      const run = async (...argv: string[]) => {
        const out: string[] = [];
        const err: string[] = [];
        const env = { INGEST_DATA_DIR: stack.dataDir, TENANTS_FILE: stack.config.edge.tenantsFile, CUTOVER_FILE: ownSet, CUTOVER_EDGE_URLS: loneAdmin, CUTOVER_NGINX_DIR: `${stack.dataDir}/nginx-no-legacy` };
        const code = await runCli(argv, { out: (s) => out.push(s), err: (s) => err.push(s), env });
        return { code, out: out.join('\n'), err: err.join('\n') };
      };
      const x = tenantId('lone-x');
      const y = tenantId('lone-y');
      const keys = { [x]: (await addTenantKey(stack.config.edge.tenantsFile, x)).apiKey, [y]: (await addTenantKey(stack.config.edge.tenantsFile, y)).apiKey };
      const send = async (t: string) => (await postIngest(loneUrl, keys[t] ?? '', batch(3))).status;
      // Until the edge has read the new keys it answers 401; no set file: it takes everyone live.
      await waitUntil('the lone edge to take the new key', async () => (await send(y)) === 200, 10_000, 25);
      expect(await send(y)).toBe(200);

      const dry = await run('cutover', 'add', x, '--dry-run', '--json');
      expect(dry.code).toBe(EXIT.CHECK_FAILED);
      const plan = JSON.parse(dry.out) as { wouldApply: boolean; plan: { check: { edges: Array<{ legacy: { configured: boolean }; newlyShed: string[] }> } } };
      expect(plan.wouldApply).toBe(false);
      expect(plan.plan.check.edges[0]?.legacy.configured).toBe(false);
      expect(plan.plan.check.edges[0]?.newlyShed).toContain(y);

      const refused = await run('cutover', 'add', x);
      expect(refused.code).toBe(EXIT.CHECK_FAILED);
      expect(refused.err).toMatch(/refused: \d+ tenant\(s\) would be refused with 503/);
      expect(await send(y)).toBe(200);

      const forced = await run('cutover', 'add', x, '--force');
      expect(forced.code, forced.err).toBe(EXIT.OK);
      const shed = await postIngest(loneUrl, keys[y] ?? '', batch(3));
      expect(shed.status).toBe(503);
      expect(JSON.stringify(shed.body)).toContain('INGEST_ERR_DEPENDENCY_UNAVAILABLE');
      expect(await send(x)).toBe(200);

      // The rollback: the CLI returns once the edge runs the new (empty) set, so the next request counts.
      const removed = await run('cutover', 'remove', x);
      expect(removed.code, removed.err).toBe(EXIT.OK);
      expect(await send(x)).toBe(200);
      expect(await send(y)).toBe(200);
      const status = (await (await fetch(`${loneAdmin}/status`)).json()) as { cutover: { enforcing: boolean; legacy: { configured: boolean } } };
      expect(status.cutover).toMatchObject({ enforcing: false, legacy: { configured: false } });
    } finally {
      await lone.close();
    }
  });
});
