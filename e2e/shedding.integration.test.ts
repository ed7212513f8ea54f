import { request as httpRequest, type ClientRequest } from 'node:http';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '@ingest/config';
import { openLog } from '@ingest/log';
import { adminListener } from '@ingest/observability';
import type { TelemetryStore } from '@ingest/storage';
import { TOPOLOGIES, batchOf, postIngest, startInProcessStack, waitUntil, type InProcessStack, type PostResult, type Topology } from '@ingest/testkit';
import { MODES, holdable, modeEnv, sharedStore, tenantId, type ModeEnv } from './helpers.ts';

let store: TelemetryStore;
beforeAll(async () => {
  store = await sharedStore();
});
afterAll(async () => {
  await store.close();
});

/** Entries a service's fair budget holds now, from its /status (served on the admin listener). */
async function budgetEntries(app: InProcessStack['edge']): Promise<number> {
  const res = await adminListener(app).inject({ method: 'GET', url: '/status' });
  return (res.json<{ budget: { entries: number } }>()).budget.entries;
}

async function held(mode: ModeEnv, env: Record<string, string>, topology: Topology) {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'shed-'));
  const cfg = loadConfig({ INGEST_DATA_DIR: dataDir, ...mode.env, ...env });
  const real = openLog({ kafkaBrokers: cfg.backends.kafkaBrokers, dir: path.join(dataDir, 'log'), partitions: 3, fsync: 'always', clientId: 'shed' });
  const h = holdable(real);
  const stack = await startInProcessStack({ env: { ...mode.env, ...env }, dataDir, log: h.log, store, topology });
  return { stack, h };
}

// Shed policies are the same whether the stages share a process or talk over HTTP.
describe.each(MODES.flatMap((mode) => TOPOLOGIES.map((topology) => [mode, topology] as const)))('shedding (%s log, %s topology)', (mode, topology) => {
  let m: ModeEnv;
  beforeAll(async () => {
    m = await modeEnv(mode);
  });
  afterAll(async () => {
    await m?.stop();
  });

  it('sink writer over budget while the log is held → the edge answers 429 with Retry-After; after release every 2xx entry is present', async () => {
    const { stack, h } = await held(m, { SINK_INFLIGHT_ENTRIES: '1000', SINK_INFLIGHT_BYTES: '64MiB', SINK_BATCH_MAX_BYTES: '1MiB' }, topology);
    try {
      const t = tenantId('sinkfull');
      const key = await stack.tenant(t);
      h.hold();
      // Three requests of 300 fill 900 of the sink's 1000 entries and wait on the held log.
      const waiting = [0, 1, 2].map(() => postIngest(stack.edgeUrl, key, batchOf(300)));
      await waitUntil('the sink writer to hold 900 entries', async () => (await budgetEntries(stack.sink)) >= 900);
      const shed = await postIngest(stack.edgeUrl, key, batchOf(300));
      expect(shed.status).toBe(429);
      expect(shed.body.error?.code).toBe('INGEST_ERR_SINK_OVERLOADED');
      expect(Number(shed.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      h.release();
      const done: PostResult[] = await Promise.all(waiting);
      const accepted = done.reduce((a, r) => (r.status === 200 ? a + (r.body.accepted ?? 0) : a), 0);
      expect(done.map((r) => r.status)).toEqual([200, 200, 200]);
      await stack.waitLoaded();
      const s = await stack.rowStats(t);
      expect(s.final).toBe(accepted);
      expect(s.distinctIds).toBe(accepted);
    } finally {
      h.release();
      await stack.close();
    }
  });

  it("the edge's own budget exhausted → 503 with Retry-After; held requests complete after release", async () => {
    const { stack, h } = await held(m, { EDGE_INFLIGHT_ENTRIES: '500', SINK_INFLIGHT_ENTRIES: '100000' }, topology);
    try {
      const t = tenantId('edgefull');
      const key = await stack.tenant(t);
      h.hold();
      const waiting = [0, 1].map(() => postIngest(stack.edgeUrl, key, batchOf(200)));
      await waitUntil('the edge to hold 400 entries', async () => (await budgetEntries(stack.edge)) >= 400);
      const shed = await postIngest(stack.edgeUrl, key, batchOf(200));
      expect(shed.status).toBe(503);
      expect(shed.body.error?.code).toBe('INGEST_ERR_EDGE_OVERLOADED');
      expect(Number(shed.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      h.release();
      const done = await Promise.all(waiting);
      expect(done.map((r) => r.status)).toEqual([200, 200]);
      await stack.waitLoaded();
      expect((await stack.rowStats(t)).final).toBe(400);
    } finally {
      h.release();
      await stack.close();
    }
  });

  it('bodies still being uploaded hold edge budget for what they have sent: the uploading tenant is refused at its share, another tenant is not', async () => {
    const { stack, h } = await held(m, { EDGE_INFLIGHT_BYTES: '2MiB', EDGE_BODY_LIMIT: '1MiB' }, topology);
    const stalled: ClientRequest[] = [];
    try {
      const key = await stack.tenant(tenantId('slow'));
      const other = await stack.tenant(tenantId('other'));
      const u = new URL('/v2/ingest', stack.edgeUrl);
      const budgetBytes = async () => ((await (await fetch(new URL('/status', stack.edgeAdminUrl))).json()) as { budget: { bytes: number } }).budget.bytes;
      // Four chunked uploads that send just under 7 × 64 KiB each and stall: the edge charges what
      // it read, in 64 KiB steps, so they hold 28 steps = 1,835,008 bytes. The slow tenant's share
      // of the 2 MiB budget is 90% (the rest is kept for tenants holding nothing): 1,887,436.
      const step = 64 * 1024;
      for (let i = 0; i < 4; i++) {
        const req = httpRequest({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'transfer-encoding': 'chunked' } });
        req.on('error', () => undefined);
        req.write(`[${' '.repeat(7 * step - 101)}`);
        stalled.push(req);
      }
      const deadline = Date.now() + 10_000;
      while ((await budgetBytes()) < 28 * step && Date.now() < deadline) await new Promise((r) => setImmediate(r));
      expect(await budgetBytes()).toBe(28 * step);
      // 60,000 more declared bytes would take the slow tenant past its share: refused before reading.
      const shed = await postIngest(stack.edgeUrl, key, undefined, { raw: `[${' '.repeat(59_998)}]` });
      expect(shed.status).toBe(503);
      expect(shed.body.error?.code).toBe('INGEST_ERR_EDGE_OVERLOADED');
      expect((await postIngest(stack.edgeUrl, other, batchOf(1))).status).toBe(200);
      for (const r of stalled) r.destroy();
      const freed = Date.now() + 10_000;
      while ((await budgetBytes()) > 0 && Date.now() < freed) await new Promise((r) => setImmediate(r));
      expect((await postIngest(stack.edgeUrl, key, batchOf(1))).status).toBe(200);
    } finally {
      for (const r of stalled) r.destroy();
      h.release();
      await stack.close();
    }
  });
});
