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

  it('usage errors exit 2 with help; --help exits 0', async () => {
    expect((await cli(['query', '--count'], env)).code).toBe(2);
    expect((await cli(['nope'], env)).code).toBe(2);
    const h = await cli(['tenants', '--help'], env);
    expect(h.code).toBe(0);
    expect(h.out).toContain('revoke-key');
  });
});
