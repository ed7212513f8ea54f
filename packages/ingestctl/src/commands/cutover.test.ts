import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { addTenantKey } from '@ingest/tenants';
import { runCli } from '../main.ts';
import { parityRows, v2Buckets } from './cutover.ts';

async function env() {
  const dir = await mkdtemp(path.join(tmpdir(), 'ingestctl-cutover-'));
  return { INGEST_DATA_DIR: dir, CUTOVER_EDGE_SETTLE_MS: '0', CUTOVER_NGINX_DIR: path.join(dir, 'nginx') };
}

async function ctl(e: Record<string, string>, ...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, { out: (s) => out.push(s), err: (s) => err.push(s), env: e });
  return { code, out: out.join('\n'), err: err.join('\n') };
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
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ dryRun: true, plan: { tenant: 'acme', from: 'legacy', to: 'mirror', keyPrefixes: [prefix] } });
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
    expect(JSON.parse(st.out)).toMatchObject({ generation: 2, tenants: { v2: 1, mirror: 1 }, inSync: true });

    const unknown = await ctl(e, 'cutover', 'add', 'nobody');
    expect(unknown.code).toBe(1);
    expect(unknown.err).toMatch(/no tenant "nobody"/);
    expect((await ctl(e, 'cutover', 'flip', 'acme')).code).toBe(2);
    expect((await ctl(e, 'cutover', 'add')).code).toBe(2);
    expect((await ctl(e, 'cutover', 'status', 'acme', '--hours', '999')).code).toBe(2);
    expect((await ctl(e, 'cutover', '--help')).out).toContain('ingestctl cutover add <tenant>');
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
