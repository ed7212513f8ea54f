import { mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import Fastify, { type FastifyInstance } from 'fastify';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TelemetryStore } from '@ingest/storage';
import { addTenantKey } from '@ingest/tenants';
import { startInProcessStack, waitUntil, type InProcessStack } from '@ingest/testkit';
import { IngestClient, checkRecord } from '@ingest/client';
import { sharedStore, tenantId } from './helpers.ts';

// Fixed ports from the range reserved for these tests.
const EDGE_DOWN_PORT = 18601;
const PROXY_PORT = 18602;
const NOTHING_LISTENS_PORT = 18603;

let store: TelemetryStore;
beforeAll(async () => {
  store = await sharedStore();
});
afterAll(async () => {
  await store?.close();
});


async function idsIn(tenant: string, ids: string[]): Promise<number> {
  const rs = await store.client.query({
    query: 'SELECT count() AS n FROM telemetry FINAL WHERE tenant_id = {t:String} AND id IN {ids:Array(String)}',
    query_params: { t: tenant, ids },
    format: 'JSONEachRow',
  });
  return Number((await rs.json<{ n: string }>())[0]?.n);
}

describe('producer SDK against the real edge (embedded log, chDB)', () => {
  it('edge down for the whole run: 50,000 entries recorded, edge started, all of them land exactly once', async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'sdk-down-'));
    const walDir = path.join(dataDir, 'wal');
    const tenant = tenantId('sdk-down');
    // The key exists before the edge does: the producer is configured while the edge is down.
    const { apiKey } = await addTenantKey(path.join(dataDir, 'tenants.json'), tenant);
    const client = await IngestClient.open({ walDir, endpoint: `http://127.0.0.1:${EDGE_DOWN_PORT}`, apiKey, maxBatchSize: 1000, backoffBaseMs: 50, backoffMaxMs: 400 });
    let stack: InProcessStack | undefined;
    try {
      for (let i = 0; i < 50_000; i++) {
        client.emitLog('sdk', 'info', `entry ${i}`, { shard: String(i % 10) });
        if (i % 5000 === 4999) await new Promise((r) => setImmediate(r));
      }
      await client.flush();
      // Nothing can be delivered while the edge is down; wait until the client has tried and failed.
      await waitUntil('a failed delivery attempt', () => client.stats().retriesTotal > 0);
      const down = client.stats();
      expect(down).toMatchObject({ appendedTotal: 50_000, exportedTotal: 0, droppedTotal: 0, backlog: 50_000 });
      expect(down.retriesTotal).toBeGreaterThan(0);
      expect(down.lastError?.code).toMatch(/ECONNREFUSED|NETWORK|Error/);

      stack = await startInProcessStack({ store, dataDir, edgePort: EDGE_DOWN_PORT });
      expect(await client.drain(120_000)).toBe(true);
      expect(client.stats()).toMatchObject({ exportedTotal: 50_000, failedTotal: 0, droppedTotal: 0, backlog: 0, ackedOffset: 49_999 });
      await stack.waitLoaded(120_000);
      const s = await stack.rowStats(tenant);
      expect(s.final).toBe(50_000);
      expect(s.distinctIds).toBe(50_000);
    } finally {
      await client.close();
      await stack?.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  describe('edge answering 429 and 503 with Retry-After', () => {
    let stack: InProcessStack;
    let proxy: FastifyInstance;
    interface Seen {
      /** When the request arrived (for a shed one, also when it was answered). */
      at: number;
      /** When it was answered. */
      answeredAt: number;
      firstId: string;
      status: number;
      retryAfterMs: number;
    }
    const seen: Seen[] = [];
    let shed = 0;
    let active = 0;
    let maxActive = 0;

    beforeAll(async () => {
      stack = await startInProcessStack({ store });
      // A fault injector in front of the real edge: the first `shed` requests get 503 (then 429)
      // with Retry-After; everything else, and every real answer, passes through untouched.
      proxy = Fastify();
      proxy.removeAllContentTypeParsers();
      proxy.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
      proxy.post('/v2/ingest', async (req, reply) => {
        active++;
        maxActive = Math.max(maxActive, active);
        const at = Date.now();
        try {
          const raw = req.body as Buffer;
          const entries = JSON.parse(gunzipSync(raw).toString()) as Array<{ id: string }>;
          const firstId = entries[0]?.id ?? '';
          if (shed > 0) {
            const status = shed > 2 ? 503 : 429;
            shed--;
            seen.push({ at, answeredAt: Date.now(), firstId, status, retryAfterMs: 1000 });
            const code = status === 503 ? 'INGEST_ERR_EDGE_OVERLOADED' : 'INGEST_ERR_SINK_OVERLOADED';
            return reply.code(status).header('retry-after', '1').send({ error: { code, message: 'injected', retryable: true } });
          }
          const up = await request(`${stack.edgeUrl}/v2/ingest`, {
            method: 'POST',
            headers: { authorization: String(req.headers.authorization), 'content-type': String(req.headers['content-type']), 'content-encoding': String(req.headers['content-encoding']) },
            body: raw,
          });
          const text = await up.body.text();
          const ra = up.headers['retry-after'];
          seen.push({ at, answeredAt: Date.now(), firstId, status: up.statusCode, retryAfterMs: ra ? Number(ra) * 1000 : 0 });
          if (ra) void reply.header('retry-after', String(ra));
          return reply.code(up.statusCode).type('application/json').send(text);
        } finally {
          active--;
        }
      });
      await proxy.listen({ host: '127.0.0.1', port: PROXY_PORT });
    });
    afterAll(async () => {
      await proxy?.close();
      await stack?.close();
    });

    function assertWaitedAfterEachShed(): void {
      const byArrival = [...seen].sort((a, b) => a.at - b.at);
      for (const s of byArrival) {
        if (s.status !== 429 && s.status !== 503) continue;
        // The same batch came back no sooner than Retry-After after the refusal...
        const again = byArrival.find((x) => x.at > s.answeredAt && x.firstId === s.firstId);
        expect(again, `batch ${s.firstId} was retried`).toBeDefined();
        expect(again!.at - s.answeredAt).toBeGreaterThanOrEqual(s.retryAfterMs - 2);
        // ...and nothing new started meanwhile (allowing 200 ms for requests already on the wire).
        const during = byArrival.filter((x) => x.at > s.answeredAt + 200 && x.at < s.answeredAt + s.retryAfterMs - 2);
        expect(during, `requests during the pause after ${s.status} at ${s.answeredAt}`).toEqual([]);
      }
    }

    it('injected 503s then 429s: waits at least Retry-After, stays within maxInFlight, delivers everything once', async () => {
      const tenant = tenantId('sdk-shed');
      const apiKey = await stack.tenant(tenant);
      seen.length = 0;
      shed = 4;
      maxActive = 0;
      const walDir = await mkdtemp(path.join(tmpdir(), 'sdk-shed-'));
      const client = await IngestClient.open({ walDir, endpoint: `http://127.0.0.1:${PROXY_PORT}`, apiKey, maxInFlight: 2, maxBatchSize: 200, backoffBaseMs: 20, backoffMaxMs: 200 });
      try {
        const ids = Array.from({ length: 3000 }, (_, i) => client.emitMetric('sdk.shed', i, { k: 'v' }, 'sdk'));
        expect(await client.drain(60_000)).toBe(true);
        expect(client.stats(), JSON.stringify(client.stats().lastError)).toMatchObject({ exportedTotal: 3000, failedTotal: 0 });
        expect(client.stats().retriesTotal).toBeGreaterThanOrEqual(4);
        expect(client.maxObservedInFlight).toBeLessThanOrEqual(2);
        expect(maxActive).toBeLessThanOrEqual(2);
        expect(seen.filter((s) => s.status === 503)).toHaveLength(2);
        expect(seen.filter((s) => s.status === 429)).toHaveLength(2);
        assertWaitedAfterEachShed();
        await stack.waitLoaded();
        const s = await stack.rowStats(tenant);
        expect(s.final).toBe(3000);
        expect(s.distinctIds).toBe(3000);
        expect(await idsIn(tenant, ids)).toBe(3000);
      } finally {
        await client.close();
        await rm(walDir, { recursive: true, force: true });
      }
    });

    it("the real edge's own 429 (tenant over its entries/s) is honoured the same way", async () => {
      const tenant = tenantId('sdk-rate');
      // 600 entries/s with 250-entry batches and 2 in flight: the edge's bucket runs dry at once.
      const apiKey = await stack.tenant(tenant, { entriesPerSecond: 600 });
      seen.length = 0;
      shed = 0;
      maxActive = 0;
      const codes = new Set<string>();
      const walDir = await mkdtemp(path.join(tmpdir(), 'sdk-rate-'));
      const client = await IngestClient.open({
        walDir,
        endpoint: `http://127.0.0.1:${PROXY_PORT}`,
        apiKey,
        maxInFlight: 2,
        maxBatchSize: 250,
        backoffBaseMs: 20,
        backoffMaxMs: 200,
        onError: (e) => codes.add(e.code),
      });
      try {
        for (let i = 0; i < 2000; i++) client.emitLog('sdk', 'info', `rate ${i}`);
        expect(await client.drain(60_000)).toBe(true);
        expect(client.stats(), JSON.stringify(client.stats().lastError)).toMatchObject({ exportedTotal: 2000, failedTotal: 0 });
        expect(codes.has('INGEST_ERR_TENANT_ENTRY_RATE')).toBe(true);
        expect(seen.some((s) => s.status === 429)).toBe(true);
        expect(maxActive).toBeLessThanOrEqual(2);
        assertWaitedAfterEachShed();
        await stack.waitLoaded();
        const s = await stack.rowStats(tenant);
        expect(s.final).toBe(2000);
        expect(s.distinctIds).toBe(2000);
      } finally {
        await client.close();
        await rm(walDir, { recursive: true, force: true });
      }
    });
  });

  it('a truncated last record and a flipped byte mid-segment: start succeeds, the rest is delivered, the two are counted', async () => {
    const walDir = await mkdtemp(path.join(tmpdir(), 'sdk-corrupt-'));
    const opts = { segmentBytes: 32 * 1024, maxEntryBytes: 4096, maxBatchBytes: 16 * 1024 };
    // Written while nothing listens, so everything stays in the WAL.
    const writer = await IngestClient.open({ walDir, endpoint: `http://127.0.0.1:${NOTHING_LISTENS_PORT}`, apiKey: 'unused', ...opts });
    const ids = Array.from({ length: 1000 }, (_, i) => writer.emitLog('sdk', 'info', `corrupt test ${i}`));
    await writer.flush();
    await writer.close();

    const segs = (await readdir(walDir)).filter((n) => n.endsWith('.wal')).sort();
    expect(segs.length).toBeGreaterThan(3);
    const idAt = (buf: Buffer, index: number): { id: string; pos: number; size: number } => {
      let pos = 0;
      for (let i = 0; ; i++) {
        const c = checkRecord(buf, pos, buf.length, 0, Number.MAX_SAFE_INTEGER);
        if (c.kind !== 'ok') throw new Error('fixture: bad record');
        if (i === index || pos + c.record.size === buf.length) {
          const id = (JSON.parse(buf.toString('utf8', c.record.payloadStart, c.record.payloadEnd)) as { id: string }).id;
          return { id, pos, size: c.record.size };
        }
        pos += c.record.size;
      }
    };
    // A flipped byte inside the 40th record of the first segment.
    const first = path.join(walDir, segs[0]!);
    const fbuf = await readFile(first);
    const flipped = idAt(fbuf, 40);
    fbuf[flipped.pos + 40]! ^= 0x55;
    await writeFile(first, fbuf);
    // The last record of the last non-empty segment cut short, as a crash mid-write leaves it.
    const nonEmpty: string[] = [];
    for (const s of segs) if ((await readFile(path.join(walDir, s))).length > 0) nonEmpty.push(s);
    const last = path.join(walDir, nonEmpty[nonEmpty.length - 1]!);
    const lbuf = await readFile(last);
    const torn = idAt(lbuf, Number.MAX_SAFE_INTEGER);
    await truncate(last, lbuf.length - 7);
    expect(torn.id).toBe(ids[999]);

    const stack = await startInProcessStack({ store });
    const tenant = tenantId('sdk-corrupt');
    const apiKey = await stack.tenant(tenant);
    const reader = await IngestClient.open({ walDir, endpoint: stack.edgeUrl, apiKey, ...opts });
    try {
      expect(reader.stats().corruptTotal).toBe(2);
      expect(reader.stats().lastError?.code).toBe('CLIENT_ERR_WAL_CORRUPT');
      expect(await reader.drain(60_000)).toBe(true);
      expect(reader.stats()).toMatchObject({ exportedTotal: 998, failedTotal: 0, corruptTotal: 2 });
      await stack.waitLoaded();
      const s = await stack.rowStats(tenant);
      expect(s.final).toBe(998);
      expect(s.distinctIds).toBe(998);
      expect(await idsIn(tenant, [flipped.id, torn.id])).toBe(0);
      expect(await idsIn(tenant, ids.filter((id) => id !== flipped.id && id !== torn.id))).toBe(998);
      expect((await readdir(path.join(walDir, 'quarantine'))).length).toBe(1);
    } finally {
      await reader.close();
      await stack.close();
      await rm(walDir, { recursive: true, force: true });
    }
  });
});
