import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { addTenantKey, readCutover } from '@ingest/tenants';
import { EXIT } from '../exit-codes.ts';
import { ctl, DEAD_URL, fakeEdge, fakeServer, type FakeLegacy, type FakeServer } from '../../test/cli-fakes.ts';
import { parityRows, v2Buckets } from './cutover.ts';

const servers: FakeServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

/** A data dir and one (fake) edge that runs whatever the set file says, with the given legacy. */
async function env(legacy: FakeLegacy = { configured: true, reachable: true }) {
  const dir = await mkdtemp(path.join(tmpdir(), 'ingestctl-cutover-'));
  const edge = await fakeEdge(path.join(dir, 'cutover.json'), legacy);
  servers.push(edge);
  return { INGEST_DATA_DIR: dir, CUTOVER_EDGE_SETTLE_MS: '0', CUTOVER_NGINX_DIR: path.join(dir, 'nginx'), CUTOVER_EDGE_URLS: edge.url };
}

describe('ingestctl cutover', () => {
  it('a key added to or revoked from a cut-over tenant is re-rendered into the map at once', async () => {
    const e = await env();
    await addTenantKey(path.join(e.INGEST_DATA_DIR, 'tenants.json'), 'acme');
    expect((await ctl(e, 'cutover', 'add', 'acme')).code).toBe(0);
    const added = await ctl(e, 'tenants', 'add', 'acme', '--json');
    expect(added.code, added.err).toBe(0);
    const newKey = (JSON.parse(added.out) as { apiKey: string }).apiKey;
    const newPrefix = newKey.slice(0, 11);
    const map = path.join(e.CUTOVER_NGINX_DIR, 'cutover-map.conf');
    expect(await readFile(map, 'utf8')).toContain(`"${newPrefix}" v2; # acme`);
    expect((await ctl(e, 'tenants', 'revoke-key', 'acme', newPrefix)).code).toBe(0);
    expect(await readFile(map, 'utf8')).not.toContain(newPrefix);
    // A tenant on legacy needs nothing rendered: adding its key leaves the map as it was.
    const before = await readFile(map, 'utf8');
    expect((await ctl(e, 'tenants', 'add', 'other')).code).toBe(0);
    expect(await readFile(map, 'utf8')).toBe(before);
  });

  it('add renders the tenant’s key prefixes into the nginx map; remove takes them out', async () => {
    const e = await env();
    const { prefix } = await addTenantKey(path.join(e.INGEST_DATA_DIR, 'tenants.json'), 'acme');
    const add = await ctl(e, 'cutover', 'add', 'acme');
    expect(add.code, add.err).toBe(0);
    expect(add.out).toContain('tenant acme: legacy → v2 (generation 1)');
    expect(add.out).toContain('NGINX_CONF unset');
    const map = path.join(e.CUTOVER_NGINX_DIR, 'cutover-map.conf');
    expect(await readFile(map, 'utf8')).toContain(`"${prefix}" v2; # acme`);
    expect(await readFile(path.join(e.CUTOVER_NGINX_DIR, 'cutover-generation.conf'), 'utf8')).toBe('default "1";\n');

    const again = await ctl(e, 'cutover', 'add', 'acme');
    expect(again.out).toContain('already v2 (generation 1)');

    const rm = await ctl(e, 'cutover', 'remove', 'acme', '--json');
    expect(JSON.parse(rm.out)).toMatchObject({ previous: 'v2', current: 'legacy', changed: true, generation: 2 });
    expect(await readFile(map, 'utf8')).not.toContain(prefix);
  });

  it('--dry-run prints the plan and writes nothing', async () => {
    const e = await env();
    const { prefix } = await addTenantKey(path.join(e.INGEST_DATA_DIR, 'tenants.json'), 'acme');
    const r = await ctl(e, 'cutover', 'mirror', 'acme', '--dry-run', '--json');
    expect(r.code).toBe(EXIT.OK);
    expect(JSON.parse(r.out)).toMatchObject({ dryRun: true, wouldApply: true, plan: { tenant: 'acme', from: 'legacy', to: 'mirror', keyPrefixes: [prefix], check: { checked: true, ok: true } } });
    await expect(readFile(path.join(e.INGEST_DATA_DIR, 'cutover.json'))).rejects.toThrow(/ENOENT/);
  });

  it('list and status show the set; unknown tenants and sub-commands are errors', async () => {
    const e = await env();
    await addTenantKey(path.join(e.INGEST_DATA_DIR, 'tenants.json'), 'acme');
    await addTenantKey(path.join(e.INGEST_DATA_DIR, 'tenants.json'), 'beta');
    await ctl(e, 'cutover', 'add', 'acme');
    await ctl(e, 'cutover', 'mirror', 'beta');
    const list = JSON.parse((await ctl(e, 'cutover', 'list', '--json')).out) as { generation: number; tenants: Array<{ tenant: string; state: string }> };
    expect(list.generation).toBe(2);
    expect(list.tenants.map((t) => [t.tenant, t.state]).sort()).toEqual([['acme', 'v2'], ['beta', 'mirror']]);
    const st = await ctl(e, 'cutover', 'status', '--json');
    expect(st.code).toBe(EXIT.OK);
    expect(JSON.parse(st.out)).toMatchObject({ generation: 2, tenants: { v2: 1, mirror: 1 }, inSync: true, sync: { checked: true, ok: true }, nginx: { checked: false } });

    const unknown = await ctl(e, 'cutover', 'add', 'nobody');
    expect(unknown.code).toBe(EXIT.CHECK_FAILED);
    expect(unknown.err).toMatch(/no tenant "nobody"/);
    expect((await ctl(e, 'cutover', 'flip', 'acme')).code).toBe(2);
    expect((await ctl(e, 'cutover', 'add')).code).toBe(2);
    expect((await ctl(e, 'cutover', 'status', 'acme', '--hours', '999')).code).toBe(2);
    expect((await ctl(e, 'cutover', '--help')).out).toContain('ingestctl cutover add <tenant>');
  });
});

describe('cutover status says what it compared, and "not checked" where it compared nothing', () => {
  it('no edge and no LB configured: NOT CHECKED (exit 1), never "in sync"; --json says { checked: false, reason }', async () => {
    const e = { ...(await env()), CUTOVER_EDGE_URLS: '' };
    const human = await ctl(e, 'cutover', 'status');
    expect(human.code).toBe(EXIT.CHECK_FAILED);
    expect(human.out).not.toMatch(/in sync/);
    expect(human.out).toContain('empty: no migration');
    expect(human.out).toContain('nginx: not checked — no nginx configured (NGINX_CONF, NGINX_URL unset)');
    expect(human.out).toContain('edges: not checked — CUTOVER_EDGE_URLS is not set');
    expect(human.out).toContain('NOT CHECKED');
    const j = JSON.parse((await ctl(e, 'cutover', 'status', '--json')).out) as Record<string, unknown>;
    expect(j).toMatchObject({ inSync: null, sync: { checked: false, reason: expect.stringContaining('CUTOVER_EDGE_URLS') as unknown }, edges: { checked: false }, nginx: { checked: false }, migration: false });
  });

  it('an edge that enforces with no legacy to forward to is a problem, not "in sync"; an unreachable edge is 3', async () => {
    const e = await env({ configured: false });
    const tf = path.join(e.INGEST_DATA_DIR, 'tenants.json');
    await addTenantKey(tf, 'acme');
    await addTenantKey(tf, 'beta');
    expect((await ctl(e, 'cutover', 'add', 'acme', '--force')).code).toBe(EXIT.OK);
    const st = await ctl(e, 'cutover', 'status');
    expect(st.code).toBe(EXIT.CHECK_FAILED);
    expect(st.out).toContain('enforcing the set; no LEGACY_URL');
    expect(st.out).toMatch(/NOT in sync:\n.*has no LEGACY_URL: tenants not cut over get 503 there/);
    const down = await ctl({ ...e, CUTOVER_EDGE_URLS: DEAD_URL }, 'cutover', 'status', '--json');
    expect(down.code).toBe(EXIT.UNREACHABLE);
    expect(JSON.parse(down.out)).toMatchObject({ inSync: false, edges: { checked: true, list: [{ url: DEAD_URL, reachable: false }] } });
  });

  it('status <tenant> without legacy counts says parity was not checked', async () => {
    const e = await env();
    await addTenantKey(path.join(e.INGEST_DATA_DIR, 'tenants.json'), 'acme');
    const sink = await fakeServer((route) => (route === 'GET /admin/v1/count' ? { status: 200, body: { count: 0 } } : undefined));
    servers.push(sink);
    const r = await ctl({ ...e, SINK_URL: sink.url }, 'cutover', 'status', 'acme', '--hours', '1');
    expect(r.code).toBe(EXIT.CHECK_FAILED);
    expect(r.out).toContain('parity: not checked — LEGACY_COUNT_URL is not set');
    const j = JSON.parse((await ctl({ ...e, SINK_URL: sink.url }, 'cutover', 'status', 'acme', '--hours', '1', '--json')).out) as { parity: unknown };
    expect(j.parity).toMatchObject({ checked: false, reason: 'LEGACY_COUNT_URL is not set', match: null });
  });
});

describe('ingestctl cutover refuses a change that would shed other tenants', () => {
  async function twoTenants(legacy: FakeLegacy) {
    const e = await env(legacy);
    const tf = path.join(e.INGEST_DATA_DIR, 'tenants.json');
    for (const t of ['acme', 'beta', 'gamma']) await addTenantKey(tf, t);
    return e;
  }
  const cutoverFile = (e: { INGEST_DATA_DIR: string }) => path.join(e.INGEST_DATA_DIR, 'cutover.json');

  it('no LEGACY_URL at the edge: the dry run names every tenant that would get 503 and exits 1; add is refused and writes nothing', async () => {
    const e = await twoTenants({ configured: false });
    const dry = await ctl(e, 'cutover', 'add', 'acme', '--dry-run');
    expect(dry.code).toBe(EXIT.CHECK_FAILED);
    expect(dry.out).toContain('LEGACY_URL not set; starts enforcing the set');
    expect(dry.out).toContain('2 tenant(s) taken by v2 (live) → refused: 503 INGEST_ERR_DEPENDENCY_UNAVAILABLE: beta, gamma');
    expect(dry.out).toContain('REFUSED');
    const dryJson = JSON.parse((await ctl(e, 'cutover', 'add', 'acme', '--dry-run', '--json')).out) as { wouldApply: boolean; plan: { check: { ok: boolean; edges: Array<{ newlyShed: string[] }> } } };
    expect(dryJson.wouldApply).toBe(false);
    expect(dryJson.plan.check.edges[0]?.newlyShed).toEqual(['beta', 'gamma']);

    const add = await ctl(e, 'cutover', 'add', 'acme');
    expect(add.code).toBe(EXIT.CHECK_FAILED);
    expect(add.err).toContain('refused: 2 tenant(s) would be refused with 503 by 1 edge(s)');
    await expect(readFile(cutoverFile(e))).rejects.toThrow(/ENOENT/);
    expect((await ctl(e, 'cutover', 'mirror', 'acme')).code).toBe(EXIT.CHECK_FAILED);
  });

  it('--force applies it; removing the last tenant empties the set, which the plan shows as the edge taking everyone again', async () => {
    const e = await twoTenants({ configured: false });
    const forced = await ctl(e, 'cutover', 'add', 'acme', '--force');
    expect(forced.code, forced.err).toBe(EXIT.OK);
    expect(forced.out).toContain('FORCED past a failed check');
    const dry = await ctl(e, 'cutover', 'remove', 'acme', '--dry-run');
    expect(dry.code).toBe(EXIT.OK);
    expect(dry.out).toContain('stops enforcing (takes every tenant again)');
    expect(dry.out).toContain('2 tenant(s) refused: 503 INGEST_ERR_DEPENDENCY_UNAVAILABLE → taken by v2 (live): beta, gamma');
    const rm = await ctl(e, 'cutover', 'remove', 'acme');
    expect(rm.code, rm.err).toBe(EXIT.OK);
    expect(Object.keys((await readCutover(cutoverFile(e))).tenants)).toEqual([]);
  });

  it('legacy configured but unreachable from the edge: a rollback that would send the tenant there is refused; add is not (it sheds no one new)', async () => {
    const e = await twoTenants({ configured: true, reachable: false });
    const add = await ctl(e, 'cutover', 'add', 'acme');
    expect(add.code, add.err).toBe(EXIT.OK);
    const rm = await ctl(e, 'cutover', 'remove', 'acme');
    expect(rm.code).toBe(EXIT.CHECK_FAILED);
    expect(rm.out).toContain('NOT reachable (connect ECONNREFUSED)');
    expect(rm.out).toContain('1 tenant(s) taken by v2 (live) → refused: 503 INGEST_ERR_DEPENDENCY_UNAVAILABLE: acme');
  });

  it('no edge to ask is not a pass: refused (1) unless --force; an edge that does not answer is 3', async () => {
    const e = await twoTenants({ configured: true, reachable: true });
    const noEdges = { ...e, CUTOVER_EDGE_URLS: '' };
    const r = await ctl(noEdges, 'cutover', 'add', 'acme');
    expect(r.code).toBe(EXIT.CHECK_FAILED);
    expect(r.out).toContain('not checked: CUTOVER_EDGE_URLS is not set');
    const down = await ctl({ ...e, CUTOVER_EDGE_URLS: DEAD_URL }, 'cutover', 'add', 'acme');
    expect(down.code).toBe(EXIT.UNREACHABLE);
    expect(down.out).toContain(`${DEAD_URL}: not checked — did not answer GET /status`);
    await expect(readFile(cutoverFile(e))).rejects.toThrow(/ENOENT/);
    expect((await ctl(noEdges, 'cutover', 'add', 'acme', '--force')).code).toBe(EXIT.OK);
  });
});

describe('parity', () => {
  const H = 3_600_000;
  const start = Date.UTC(2026, 0, 1, 10);

  it('per-hour buckets from cumulative "count since" queries', async () => {
    // Entries: 3 logs in hour 0, 2 logs in hour 2, 1 metric in hour 1.
    const ts = { log: [start + 1, start + 2, start + 3, start + 2 * H + 5, start + 2 * H + 6], metric: [start + H + 1] } as Record<string, number[]>;
    let queries = 0;
    const count = async (q: { type: string; sinceMs: number }) => {
      queries++;
      return (ts[q.type] ?? []).filter((t) => t >= q.sinceMs).length;
    };
    const b = await v2Buckets(count, 'acme', 'telemetry_shadow', start, 3);
    expect([...b].sort()).toEqual([
      [`${new Date(start).toISOString()}|log`, 3],
      [`${new Date(start + H).toISOString()}|metric`, 1],
      [`${new Date(start + 2 * H).toISOString()}|log`, 2],
    ]);
    // Types with nothing in the window cost one query each.
    expect(queries).toBe(2 * 4 + 3);
  });

  it('rows join legacy and v2 by hour and type; missing on either side is a zero, not a match', () => {
    const h0 = new Date(start).toISOString();
    const h1 = new Date(start + H).toISOString();
    const v2 = new Map([[`${h0}|log`, 3], [`${h1}|metric`, 1]]);
    const rows = parityRows({ buckets: [{ hour: h0, type: 'log', count: 3 }, { hour: h1, type: 'event', count: 2 }] }, v2);
    expect(rows).toEqual([
      { hour: h0, type: 'log', legacy: 3, v2: 3 },
      { hour: h1, type: 'event', legacy: 2, v2: 0 },
      { hour: h1, type: 'metric', legacy: 0, v2: 1 },
    ]);
    expect(parityRows(undefined, v2).every((r) => r.legacy === null)).toBe(true);
  });
});
