import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '@ingest/ingestctl';
import type { TelemetryStore } from '@ingest/storage';
import { batchOf, postIngest, startInProcessStack, type InProcessStack } from '@ingest/testkit';
import { sharedStore, tenantId } from './helpers.ts';

const TOKEN = 'a-shared-internal-secret-0123456789';

// With INGEST_INTERNAL_TOKEN set, only our own services (and ingestctl) may call the normalizer's and
// sink writer's internal and admin routes: nobody on the network can write as an arbitrary tenant.
describe('internal routes behind INGEST_INTERNAL_TOKEN', () => {
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

  it('the pipeline still works end to end: each hop sends the token', async () => {
    const t = tenantId('auth');
    const key = await stack.tenant(t);
    const r = await postIngest(stack.edgeUrl, key, batchOf(10));
    expect(r.status).toBe(200);
    expect(r.body.accepted).toBe(10);
    await stack.waitLoaded();
    expect((await stack.rowStats(t)).final).toBe(10);
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
    expect(await runCli(['query', '--tenant', 'nobody', '--count', '--json'], io({}))).toBe(1);
  });
});
