import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  addTenantKey,
  parseCutover,
  readCutover,
  readCutoverFile,
  readTenants,
  renderEnvoyRoutes,
  renderNginxMap,
  revokeTenantKey,
  routeMapEntries,
  routeOf,
  setTenantRoute,
  type CutoverDoc,
  type TenantsDoc,
} from './index.ts';

async function files() {
  const dir = await mkdtemp(path.join(tmpdir(), 'cutover-'));
  return { tenantsFile: path.join(dir, 'tenants.json'), cutoverFile: path.join(dir, 'cutover.json') };
}

describe('the cut-over set', () => {
  it('absent file: no tenants, generation 0, everyone legacy', async () => {
    const f = await files();
    expect(await readCutoverFile(f.cutoverFile)).toBeUndefined();
    const doc = await readCutover(f.cutoverFile);
    expect(doc.generation).toBe(0);
    expect(routeOf(doc, 'anyone')).toBe('legacy');
  });

  it('add, mirror and remove move one tenant between states, bumping the generation each time', async () => {
    const f = await files();
    await addTenantKey(f.tenantsFile, 'acme');
    const a = await setTenantRoute(f, 'acme', 'v2');
    expect(a).toMatchObject({ previous: 'legacy', current: 'v2', changed: true });
    expect(a.doc.generation).toBe(1);
    const m = await setTenantRoute(f, 'acme', 'mirror');
    expect(m).toMatchObject({ previous: 'v2', current: 'mirror', changed: true });
    const r = await setTenantRoute(f, 'acme', 'legacy');
    expect(r).toMatchObject({ previous: 'mirror', current: 'legacy', changed: true });
    const doc = await readCutover(f.cutoverFile);
    expect(doc.generation).toBe(3);
    expect(doc.tenants['acme']).toBeUndefined();
  });

  it('asking for the state a tenant is already in writes nothing but still publishes (repairs the map)', async () => {
    const f = await files();
    await addTenantKey(f.tenantsFile, 'acme');
    await setTenantRoute(f, 'acme', 'v2');
    const before = await readFile(f.cutoverFile, 'utf8');
    let published = 0;
    const again = await setTenantRoute(f, 'acme', 'v2', async () => {
      published++;
    });
    expect(again.changed).toBe(false);
    expect(published).toBe(1);
    expect(await readFile(f.cutoverFile, 'utf8')).toBe(before);
  });

  it('refuses to cut over or mirror a tenant that does not exist; removing one is always allowed', async () => {
    const f = await files();
    await expect(setTenantRoute(f, 'nobody', 'v2')).rejects.toThrow(/no tenant "nobody"/);
    await expect(setTenantRoute(f, 'nobody', 'mirror')).rejects.toThrow(/no tenant/);
    await expect(setTenantRoute(f, '../etc', 'legacy')).rejects.toThrow(/not valid/);
    expect((await setTenantRoute(f, 'nobody', 'legacy')).changed).toBe(false);
  });

  it('concurrent changes serialize under the tenants lock: every one lands, generations are distinct', async () => {
    const f = await files();
    for (let i = 0; i < 10; i++) await addTenantKey(f.tenantsFile, `t${i}`);
    const seen: number[] = [];
    await Promise.all(Array.from({ length: 10 }, (_, i) => setTenantRoute(f, `t${i}`, i % 2 ? 'mirror' : 'v2', async (doc) => void seen.push(doc.generation))));
    const doc = await readCutover(f.cutoverFile);
    expect(Object.keys(doc.tenants)).toHaveLength(10);
    expect(doc.generation).toBe(10);
    // Published in the order written: a later map is never overwritten by an earlier one.
    expect(seen).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('rejects a hand-edited file with an unknown state, a bad tenant id or no generation', () => {
    expect(() => parseCutover('{"version":1,"generation":1,"tenants":{"a":{"state":"v3"}}}')).toThrow(/state "v3"/);
    expect(() => parseCutover('{"version":1,"generation":1,"tenants":{"A B":{"state":"v2"}}}')).toThrow(/not a valid tenant/);
    expect(() => parseCutover('{"version":1,"tenants":{}}')).toThrow(/generation/);
    expect(() => parseCutover('{"tenants":{}}')).toThrow(/not a cut-over file/);
    const ok = parseCutover('{"version":1,"generation":4,"tenants":{"constructor":{"state":"mirror","since":"x"}}}');
    expect(routeOf(ok, 'constructor')).toBe('mirror');
    expect(routeOf(ok, 'toString')).toBe('legacy');
  });
});

function tenantsDoc(keys: Record<string, Array<{ prefix: string; revoked?: boolean }>>): TenantsDoc {
  const tenants: TenantsDoc['tenants'] = {};
  for (const [t, ks] of Object.entries(keys)) {
    tenants[t] = { createdAt: '', limits: {}, keys: ks.map((k) => ({ prefix: k.prefix, sha256: '0'.repeat(64), createdAt: '', revokedAt: k.revoked ? 'x' : null })) };
  }
  return { version: 1, tenants };
}

function cut(states: Record<string, 'v2' | 'mirror'>, generation = 7): CutoverDoc {
  const tenants: CutoverDoc['tenants'] = {};
  for (const [t, s] of Object.entries(states)) tenants[t] = { state: s, since: '' };
  return { version: 1, generation, updatedAt: '', tenants };
}

describe('rendering the LB routing table', () => {
  const td = tenantsDoc({
    acme: [{ prefix: 'ik_Zzzzzzz1' }, { prefix: 'ik_Aaaaaaa1' }, { prefix: 'ik_Revoked1', revoked: true }],
    beta: [{ prefix: 'ik_Bbbbbbb1' }],
    gamma: [{ prefix: 'ik_Ccccccc1' }],
  });

  it('one row per live key of each cut-over or mirrored tenant, sorted; legacy tenants and revoked keys absent', () => {
    const e = routeMapEntries(td, cut({ acme: 'v2', beta: 'mirror', ghost: 'v2' }));
    expect(e).toEqual([
      { prefix: 'ik_Aaaaaaa1', tenant: 'acme', route: 'v2' },
      { prefix: 'ik_Bbbbbbb1', tenant: 'beta', route: 'mirror' },
      { prefix: 'ik_Zzzzzzz1', tenant: 'acme', route: 'v2' },
    ]);
  });

  it('renders exact nginx map strings and the generation line', () => {
    const r = renderNginxMap(routeMapEntries(td, cut({ acme: 'v2', beta: 'mirror' })), td, 7);
    expect(r.map).toContain('"ik_Aaaaaaa1" v2; # acme\n');
    expect(r.map).toContain('"ik_Bbbbbbb1" mirror; # beta\n');
    expect(r.map).not.toContain('Ccccccc1');
    expect(r.map).not.toContain('Revoked1');
    expect(r.generation).toBe('default "7";\n');
    expect(r.caseCollisions).toEqual([]);
    // Same input, same bytes: a re-render that changes nothing is visibly a no-op.
    expect(renderNginxMap(routeMapEntries(td, cut({ beta: 'mirror', acme: 'v2' })), td, 7).map).toBe(r.map);
  });

  it('a prefix that differs from another live key only by case becomes a case-sensitive regex (nginx map strings ignore case)', () => {
    const clash = tenantsDoc({ acme: [{ prefix: 'ik_AbCdEfGh' }], other: [{ prefix: 'ik_abcdefgh' }] });
    const r = renderNginxMap(routeMapEntries(clash, cut({ acme: 'v2' })), clash, 1);
    expect(r.map).toContain('"~^ik_AbCdEfGh$" v2;');
    expect(r.map).not.toContain('"ik_AbCdEfGh"');
    expect(r.caseCollisions).toEqual(['ik_AbCdEfGh']);
  });

  it('never renders anything that is not a key prefix into LB config', () => {
    expect(() => renderNginxMap([{ prefix: 'ik_x"; } server {', tenant: 'acme', route: 'v2' }], td, 1)).toThrow(/refusing/);
    const hostile = tenantsDoc({ acme: [{ prefix: 'ik_bad"pfx' }, { prefix: 'ik_Aaaaaaa1' }] });
    expect(routeMapEntries(hostile, cut({ acme: 'v2' })).map((e) => e.prefix)).toEqual(['ik_Aaaaaaa1']);
  });

  it('renders envoy routes: v2 keys to the edge with the header, mirrored keys to legacy with a mirror, then a catch-all', () => {
    const doc = JSON.parse(renderEnvoyRoutes(routeMapEntries(td, cut({ acme: 'v2', beta: 'mirror' })), 7)) as {
      version_info: string;
      resources: Array<{ name: string; virtual_hosts: Array<{ routes: Array<Record<string, unknown>> }> }>;
    };
    expect(doc.version_info).toBe('7');
    const routes = doc.resources[0]?.virtual_hosts[0]?.routes ?? [];
    expect(routes.map((r) => r['name'])).toEqual(['acme/ik_Aaaaaaa1', 'beta/ik_Bbbbbbb1', 'acme/ik_Zzzzzzz1', 'legacy']);
    expect(routes[0]).toMatchObject({ route: { cluster: 'ingest_edge' }, request_headers_to_add: [{ header: { key: 'x-ingest-version', value: 'v2' } }] });
    expect(routes[1]).toMatchObject({ route: { cluster: 'ingest_legacy', request_mirror_policies: [{ cluster: 'ingest_mirror_marker' }] } });
    expect(routes[3]).toMatchObject({ match: { prefix: '/' }, route: { cluster: 'ingest_legacy' }, request_headers_to_remove: ['x-ingest-version', 'x-ingest-mirror'] });
  });

  it('a key added or revoked for a cut-over tenant shows up on the next render', async () => {
    const f = await files();
    const k1 = await addTenantKey(f.tenantsFile, 'acme');
    await setTenantRoute(f, 'acme', 'v2');
    const k2 = await addTenantKey(f.tenantsFile, 'acme');
    await revokeTenantKey(f.tenantsFile, 'acme', k1.prefix);
    const e = routeMapEntries(await readTenants(f.tenantsFile), await readCutover(f.cutoverFile));
    expect(e.map((x) => x.prefix)).toEqual([k2.prefix]);
    await writeFile(f.cutoverFile, '{ broken');
    await expect(readCutover(f.cutoverFile)).rejects.toThrow();
  });
});
