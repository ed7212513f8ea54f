import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '@ingest/ingestctl';
import type { TelemetryStore } from '@ingest/storage';
import { batchOf, postIngest, startInProcessStack, type InProcessStack } from '@ingest/testkit';
import { sharedStore } from './helpers.ts';

async function cli(argv: string[], env: Record<string, string>): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCli(argv, { out: (s) => (out += s + '\n'), err: (s) => (err += s + '\n'), env });
  return { code, out: out.trim(), err: err.trim() };
}

describe('ingestctl against a running embedded stack', () => {
  let store: TelemetryStore;
  let stack: InProcessStack;
  let env: Record<string, string>;

  beforeAll(async () => {
    store = await sharedStore();
    stack = await startInProcessStack({ store });
    env = {
      TENANTS_FILE: stack.config.edge.tenantsFile,
      EDGE_URL: stack.edgeUrl,
      NORMALIZER_URL: stack.config.edge.normalizerUrl,
      SINK_URL: stack.sinkUrl,
      EDGE_ADMIN_URL: stack.edgeAdminUrl,
      NORMALIZER_ADMIN_URL: stack.normalizerAdminUrl,
      SINK_ADMIN_URL: stack.sinkAdminUrl,
    };
  });
  afterAll(async () => {
    await stack?.close();
    await store?.close();
  });

  it('tenants add --json prints exactly {"tenant","apiKey"}, and the key works at the edge', async () => {
    const r = await cli(['tenants', 'add', 'cli-tenant', '--json'], env);
    expect(r.code).toBe(0);
    const parsed = JSON.parse(r.out) as Record<string, string>;
    expect(Object.keys(parsed)).toEqual(['tenant', 'apiKey']);
    expect(parsed['tenant']).toBe('cli-tenant');
    let status = 0;
    for (let i = 0; i < 40 && status !== 200; i++) {
      status = (await postIngest(stack.edgeUrl, parsed['apiKey'], batchOf(25))).status;
      if (status !== 200) await new Promise((res) => setTimeout(res, 50));
    }
    expect(status).toBe(200);
  });

  it('query --count --json prints exactly {"count":N} of distinct entries', async () => {
    await stack.waitLoaded();
    const r = await cli(['query', '--tenant', 'cli-tenant', '--count', '--json'], env);
    expect(r.code).toBe(0);
    expect(r.out).toBe('{"count":25}');
    const none = await cli(['query', '--tenant', 'cli-tenant', '--type', 'metric', '--count', '--json'], env);
    expect(none.out).toBe('{"count":0}');
  });

  it('tenants list and revoke-key', async () => {
    const list = JSON.parse((await cli(['tenants', 'list', '--json'], env)).out) as { tenants: Array<{ tenant: string; prefixes: string }> };
    const row = list.tenants.find((t) => t.tenant === 'cli-tenant');
    expect(row?.prefixes).toMatch(/^ik_/);
    const rev = await cli(['tenants', 'revoke-key', 'cli-tenant', row?.prefixes ?? '', '--json'], env);
    expect(JSON.parse(rev.out)).toEqual({ tenant: 'cli-tenant', revoked: 1 });
  });

  it('status --json reports every service ready, with budget use and loader lag', async () => {
    const r = await cli(['status', '--json'], env);
    expect(r.code).toBe(0);
    const s = JSON.parse(r.out) as { services: Array<{ service: string; ready: boolean; status: Record<string, unknown> }> };
    expect(s.services.map((x) => [x.service, x.ready])).toEqual([
      ['edge', true],
      ['normalizer', true],
      ['sink-writer', true],
    ]);
    expect(s.services[2]?.status['lag']).toMatchObject({ total: 0 });
    expect(s.services[0]?.status['budget']).toMatchObject({ maxEntries: stack.config.edge.inflightEntries });
  });

  it('query --count --from --by hour counts per hour, tenant and type through the sink writer', async () => {
    await stack.waitLoaded();
    const j = await cli(['query', '--count', '--from=-2h', '--by', 'hour', '--tenant', 'cli-tenant', '--json'], env);
    expect(j.code).toBe(0);
    const body = JSON.parse(j.out) as { by: string; truncated: boolean; rows: Array<{ bucket: string; tenant: string; type: string; entries: number }> };
    expect(body.by).toBe('hour');
    expect(body.truncated).toBe(false);
    expect(body.rows.every((r) => r.tenant === 'cli-tenant' && r.type === 'log' && /T\d\d:00:00\.000Z$/.test(r.bucket))).toBe(true);
    expect(body.rows.reduce((n, r) => n + r.entries, 0)).toBe(25);
    const human = await cli(['query', '--count', '--from=-2h', '--to', 'now', '--by', 'hour'], env);
    expect(human.code).toBe(0);
    expect(human.out).toMatch(/BUCKET\s+TENANT\s+TYPE\s+ENTRIES/);
    expect(human.out).toContain('cli-tenant');
    const empty = await cli(['query', '--count', '--from', '2020-01-01', '--to', '2020-01-02', '--by', 'day', '--json'], env);
    expect(JSON.parse(empty.out)).toMatchObject({ rows: [] });
    expect((await cli(['query', '--count', '--from', '2026-11-20T10:00:00', '--by', 'hour'], env)).code).toBe(2);
    expect((await cli(['query', '--count', '--from=-1h', '--by', 'week'], env)).code).toBe(2);
  });

  it('sql runs a SELECT on the running stack (--json, --ndjson, table) and refuses writes with INGEST_ERR_SQL_REFUSED', async () => {
    const q = "SELECT tenant_id, count() AS n FROM telemetry FINAL WHERE tenant_id = 'cli-tenant' GROUP BY tenant_id";
    const j = await cli(['sql', q, '--json'], env);
    expect(j.code).toBe(0);
    expect(JSON.parse(j.out)).toMatchObject({ columns: [{ name: 'tenant_id' }, { name: 'n', type: 'UInt64' }], rows: [['cli-tenant', '25']], truncated: false });
    expect((await cli(['sql', q, '--ndjson'], env)).out).toBe('{"tenant_id":"cli-tenant","n":"25"}');
    const t = await cli(['sql', q], env);
    expect(t.out).toMatch(/TENANT_ID\s+N\ncli-tenant\s+25\n1 row in \d+ ms/);
    for (const w of ["INSERT INTO telemetry (tenant_id, id) VALUES ('cli-tenant', 'x')", "ALTER TABLE telemetry DELETE WHERE tenant_id = 'cli-tenant'", 'DROP TABLE telemetry', 'SELECT 1; DROP TABLE telemetry']) {
      const r = await cli(['sql', w], env);
      expect(r.code, w).toBe(1);
      expect(r.err).toContain('INGEST_ERR_SQL_REFUSED');
    }
    const bad = await cli(['sql', 'SELECT nope FROM telemetry'], env);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('INGEST_ERR_SQL_FAILED');
    // Nothing changed, and the sink writer's session still loads and counts as before.
    expect((await cli(['query', '--tenant', 'cli-tenant', '--count', '--json'], env)).out).toBe('{"count":25}');
  });

  it('usage errors exit 2 with help; --help exits 0', async () => {
    expect((await cli(['query', '--count'], env)).code).toBe(2);
    expect((await cli(['nope'], env)).code).toBe(2);
    const h = await cli(['tenants', '--help'], env);
    expect(h.code).toBe(0);
    expect(h.out).toContain('revoke-key');
  });
});
