import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RollupPage, StoredEntry } from '@ingest/contracts';
import { runCli } from '@ingest/ingestctl';
import type { TelemetryStore } from '@ingest/storage';
import { TOPOLOGIES, postIngest, startInProcessStack, waitUntil, type InProcessStack } from '@ingest/testkit';
import { sharedStore, tenantId } from './helpers.ts';

/** Runs ingestctl in this process, with only the given environment (none of the test's own). */
async function cli(argv: string[], env: Record<string, string>, signal?: AbortSignal, onOut?: (s: string) => void): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCli(argv, {
    out: (s) => {
      out += s + '\n';
      onOut?.(s);
    },
    err: (s) => (err += s + '\n'),
    env,
    ...(signal ? { signal } : {}),
  });
  return { code, out: out.trim(), err: err.trim() };
}

let store: TelemetryStore;
let dir: string;
beforeAll(async () => {
  store = await sharedStore();
  dir = await mkdtemp(path.join(tmpdir(), 'ingestctl-read-'));
});
afterAll(async () => {
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

// The stacks listen on ports the OS picks (never the defaults 8080/8082/908x); ingestctl finds them
// through a config file alone, as it would a product started with `pnpm start --config`.
describe.each(TOPOLOGIES)('ingestctl query, tail and dlq against a running product on other ports (%s topology)', (topology) => {
  let stack: InProcessStack;
  let env: Record<string, string>;
  const tenant = tenantId('cli');
  let key = '';
  let normalizerUrl = '';

  beforeAll(async () => {
    stack = await startInProcessStack({ store, topology });
    normalizerUrl = `http://127.0.0.1:${(stack.normalizer.server.address() as AddressInfo).port}`;
    const config = path.join(dir, `ingest-${topology}.env`);
    await writeFile(
      config,
      [
        '# what pnpm start --config reads, and ingestctl with it',
        `TENANTS_FILE=${stack.config.edge.tenantsFile}`,
        `EDGE_URL=${stack.edgeUrl}`,
        `SINK_URL=${stack.sinkUrl}`,
        `NORMALIZER_URL=${normalizerUrl}`,
        `EDGE_ADMIN_URL=${stack.edgeAdminUrl}`,
        `NORMALIZER_ADMIN_URL=${stack.normalizerAdminUrl}`,
        `SINK_ADMIN_URL=${stack.sinkAdminUrl}`,
      ].join('\n'),
    );
    env = { INGEST_CONFIG: config };
    key = await stack.tenant(tenant);
    const now = Date.now();
    const entries = [
      { id: 'l1', type: 'log', timestamp: now - 3000, app: 'api', data: { level: 'error', message: 'disk full on /var' }, labels: { env: 'prod' } },
      { id: 'l2', type: 'log', timestamp: now - 2000, app: 'web', data: { level: 'info', message: 'GET / 200' }, labels: { env: 'dev' } },
      { id: 'm1', type: 'metric', timestamp: now - 1000, app: 'api', data: { name: 'cpu', value: 0.5, unit: 'ratio' }, labels: { env: 'prod' } },
      // Refused: an unknown level. It goes to the dead-letter topic with its reason.
      { id: 'bad1', type: 'log', timestamp: now, app: 'api', data: { level: 'loud', message: 'fix me' } },
    ];
    const r = await postIngest(stack.edgeUrl, key, entries);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.accepted).toBe(3);
    await stack.waitLoaded();
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('status finds every service through the config file', async () => {
    const r = await cli(['status', '--json'], env);
    expect(r.code, r.err).toBe(0);
    const s = JSON.parse(r.out) as { services: Array<{ url: string; ready: boolean }> };
    expect(s.services.map((x) => x.url)).toEqual([stack.edgeUrl, normalizerUrl, stack.sinkUrl]);
  });

  it('query prints the rows as a table that fits the terminal, and as JSON and NDJSON with the filters applied', async () => {
    const t = await cli(['query', '--tenant', tenant, '--label', 'env=prod'], { ...env, COLUMNS: '100' });
    expect(t.code, t.err).toBe(0);
    const lines = t.out.split('\n');
    expect(lines[0]).toMatch(/^TIME\s+TYPE\s+APP\s+LEVEL\/NAME\s+MESSAGE\/VALUE\s+LABELS$/);
    expect(lines).toHaveLength(3);
    expect(lines[1]).toMatch(/metric\s+api\s+cpu\s+0\.5 ratio\s+env=prod/);
    expect(lines[2]).toMatch(/log\s+api\s+error\s+disk full on \/var\s+env=prod/);
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(100);

    const j = await cli(['query', '--tenant', tenant, '--type', 'log', '--q', 'disk', '--json'], env);
    const page = JSON.parse(j.out) as { entries: StoredEntry[]; next: string | null };
    expect(page.entries.map((e) => e.id)).toEqual(['l1']);
    expect(page.next).toBeNull();

    const n = await cli(['query', '--tenant', tenant, '--ndjson', '--limit', '2'], env);
    const got = n.out.split('\n').map((l) => (JSON.parse(l) as StoredEntry).id);
    expect(got).toEqual(['m1', 'l2']);
    expect(n.out).not.toMatch(/more:/);

    // Pages: the table says how to get the next one; following it returns the rest, once.
    const p1 = await cli(['query', '--tenant', tenant, '--limit', '2'], env);
    const cursor = /more: add --cursor (\S+)/.exec(p1.out)?.[1];
    expect(cursor).toBeTruthy();
    const p2 = await cli(['query', '--tenant', tenant, '--limit', '2', '--cursor', cursor ?? '', '--json'], env);
    expect((JSON.parse(p2.out) as { entries: StoredEntry[] }).entries.map((e) => e.id)).toEqual(['l1']);

    // --count stays.
    expect((await cli(['query', '--tenant', tenant, '--count', '--json'], env)).out).toBe('{"count":3}');
  });

  it('query --rollup prints the minute buckets (counts and metric series) once the refresher has run, as a table and as JSON', async () => {
    const refreshed = await fetch(new URL('/admin/v1/rollups/refresh', stack.sinkUrl), { method: 'POST', headers: { 'x-ingest-internal-token': stack.config.sink.internalToken ?? '' } });
    expect(refreshed.status).toBe(200);
    const j = await cli(['query', '--tenant', tenant, '--rollup', '1h', '--json'], env);
    expect(j.code, j.err).toBe(0);
    const page = JSON.parse(j.out) as RollupPage;
    expect(page.counts.reduce((a, c) => a + c.count, 0)).toBe(3);
    expect(page.metrics).toEqual([expect.objectContaining({ name: 'cpu', app: 'api', labels: { env: 'prod' }, count: 1, sum: 0.5, min: 0.5, max: 0.5 })]);
    const t = await cli(['query', '--tenant', tenant, '--rollup', '1m', '--type', 'log'], env);
    expect(t.code, t.err).toBe(0);
    expect(t.out).toMatch(/entries per minute \(UTC\)/);
    expect(t.out).toMatch(/log\s+api\s+error\s+1/);
    expect(t.out).not.toMatch(/metric series/);
    const bad = await cli(['query', '--tenant', tenant, '--rollup', '5m'], env);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--rollup 5m: use 1m or 1h/);
  });

  it('tenants list --json prints limits as objects', async () => {
    const id = tenantId('lim');
    expect((await cli(['tenants', 'add', id, '--eps', '5', '--rps', '2', '--json'], env)).code).toBe(0);
    const list = JSON.parse((await cli(['tenants', 'list', '--json'], env)).out) as { tenants: Array<{ tenant: string; limits: unknown }> };
    expect(list.tenants.find((x) => x.tenant === id)?.limits).toEqual({ entriesPerSecond: 5, requestsPerSecond: 2 });
  });

  it('bad flag values are refused with the valid choices (exit 2)', async () => {
    const t = await cli(['query', '--tenant', tenant, '--type', 'foo'], env);
    expect(t.code).toBe(2);
    expect(t.err).toMatch(/--type foo: use one of log, metric, event, health, alert/);
    const d = await cli(['query', '--tenant', tenant, '--from=yesterday'], env);
    expect(d.code).toBe(2);
    expect(d.err).toMatch(/RFC 3339 with a zone.*relative like -2h/);
    const i = await cli(['tail', '--tenant', tenant, '--interval', 'often'], env);
    expect(i.code).toBe(2);
    expect(i.err).toMatch(/"often" is not a duration \(use e\.g\. 30s, 15m, 2h, 7d\)/);
    const r = await cli(['dlq', 'list', '--reason', 'LOUD'], env);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/INGEST_ERR_ENTRY_ENUM/);
  });

  it('tail prints the last entries, then follows new ones until stopped', async () => {
    const stop = new AbortController();
    const seen: string[] = [];
    const running = cli(['tail', '--tenant', tenant, '--type', 'log', '-n', '1', '--interval', '1s', '--ndjson'], env, stop.signal, (s) => seen.push((JSON.parse(s) as StoredEntry).id));
    await waitUntil('tail to print the newest log', () => seen.includes('l2'), 30_000);
    expect(seen).toEqual(['l2']);
    const r = await postIngest(stack.edgeUrl, key, [
      { id: 'new-log', type: 'log', timestamp: Date.now(), app: 'api', data: { level: 'warn', message: 'followed' } },
      { id: 'new-metric', type: 'metric', timestamp: Date.now(), app: 'api', data: { name: 'cpu', value: 1, unit: 'ratio' } },
    ]);
    expect(r.status).toBe(200);
    await waitUntil('tail to print the new log', () => seen.includes('new-log'), 60_000);
    stop.abort();
    const done = await running;
    expect(done.code, done.err).toBe(0);
    // The filter holds while following: the metric is never printed, nothing twice.
    expect(seen).toEqual(['l2', 'new-log']);
  });

  it('dlq list, show and export: reason, time and tenant; export is NDJSON a producer can fix and resend', async () => {
    await waitUntil('the dead letter to be readable', async () => (await cli(['dlq', 'list', '--tenant', tenant, '--json'], env)).out.includes('bad1'), 30_000);
    const list = await cli(['dlq', 'list', '--tenant', tenant, '--reason', 'INGEST_ERR_ENTRY_ENUM', '--from=-1h', '--json'], env);
    expect(list.code, list.err).toBe(0);
    const letters = (JSON.parse(list.out) as { deadLetters: Array<{ tenant: string; code: string; receivedAt: number; partition: number; offset: number; raw: string }> }).deadLetters;
    expect(letters).toHaveLength(1);
    const l = letters[0];
    expect(l).toMatchObject({ tenant, code: 'INGEST_ERR_ENTRY_ENUM' });
    expect(Date.now() - (l?.receivedAt ?? 0)).toBeLessThan(300_000);
    // Another tenant's filter, another reason, a window before it: none.
    for (const f of [['--tenant', 'nobody'], ['--tenant', tenant, '--reason', 'INGEST_ERR_ENTRY_TYPE'], ['--tenant', tenant, '--to=-1h']]) {
      expect((JSON.parse((await cli(['dlq', 'list', ...f, '--json'], env)).out) as { deadLetters: unknown[] }).deadLetters).toEqual([]);
    }
    const table = await cli(['dlq', 'list', '--tenant', tenant], env);
    expect(table.out).toMatch(new RegExp(`TIME\\s+TENANT\\s+REASON\\s+AT\\s+MESSAGE[\\s\\S]*${tenant}\\s+INGEST_ERR_ENTRY_ENUM\\s+${l?.partition}:${l?.offset}`));

    const show = await cli(['dlq', 'show', `${l?.partition}:${l?.offset}`], env);
    expect(show.code).toBe(0);
    expect(show.out).toMatch(/reason:\s+INGEST_ERR_ENTRY_ENUM/);
    expect(show.out).toMatch(/"message": "fix me"/);

    const file = path.join(dir, `dlq-${topology}.ndjson`);
    const exp = await cli(['dlq', 'export', '--tenant', tenant, '--out', file], env);
    expect(exp.code).toBe(0);
    expect(exp.err).toMatch(/exported 1 entry/);
    const text = await readFile(file, 'utf8');
    // Fixed (a level the service accepts) and sent back as it is: accepted.
    const fixed = text.replace('"loud"', '"warn"');
    const res = await fetch(new URL('/v2/ingest', stack.edgeUrl), { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/x-ndjson' }, body: fixed });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { accepted: number }).accepted).toBe(1);
  });
});
