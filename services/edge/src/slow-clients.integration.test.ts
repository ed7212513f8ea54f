import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '@ingest/config';
import { adminListener } from '@ingest/observability';
import { addTenantKey } from '@ingest/tenants';
import { clientAgent, connectionFlood, formatQuiet, quietTenant, send, slowUpload, startFakeNormalizer, targetOf, type SlowUpload, type Target } from '@ingest/testkit';
import { buildEdge } from './app.ts';

/**
 * The edge alone (a stand-in normalizer that accepts at once) under slow-client attacks, with a
 * quiet tenant measured during each. Attackers connect from 127.0.0.2, the quiet tenant from
 * 127.0.0.1, so per-address limits see two clients.
 */

const ATTACKER = '127.0.0.2';
let dir: string;
let normalizer: { url: string; close(): Promise<void> };

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'edge-slow-'));
  normalizer = await startFakeNormalizer();
});
afterAll(async () => {
  await normalizer.close();
  await rm(dir, { recursive: true, force: true });
});

interface Edge {
  app: FastifyInstance;
  target: Target;
  heavy: string;
  quiet: string;
  status(): Promise<{ readingBodies: number; budget: { bytes: number }; connections: { open: number } }>;
  close(): Promise<void>;
}

let n = 0;
async function startEdge(env: Record<string, string>): Promise<Edge> {
  const tenantsFile = path.join(dir, `tenants-${n++}.json`);
  const heavy = (await addTenantKey(tenantsFile, 'heavy')).apiKey;
  const quiet = (await addTenantKey(tenantsFile, 'quiet')).apiKey;
  const cfg = loadConfig({ INGEST_DATA_DIR: dir, TENANTS_FILE: tenantsFile, NORMALIZER_URL: normalizer.url, ...env });
  const app = await buildEdge({ config: cfg.edge, logger: false });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return {
    app,
    target: targetOf(url),
    heavy,
    quiet,
    // /status lives on the admin listener, never the public port.
    status: async () => (await adminListener(app).inject({ url: '/status' })).json(),
    close: async () => {
      app.server.closeAllConnections();
      await app.close();
    },
  };
}

/** Polls `cond` until true, bounded; the failure names what was awaited. */
async function until(what: string, cond: () => Promise<boolean> | boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await cond()) return;
    await new Promise((r) => setImmediate(r));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

describe('edge under slow clients', () => {
  it('slow-body fairness: a second tenant keeps ≥95% success while one tenant holds 40 slow uploads', async () => {
    // Before: each chunked upload reserved the whole body limit, so 16 of them filled this
    // 16 MiB budget and everyone else got 503. Now each holds what it sent, in 64 KiB steps.
    const edge = await startEdge({ EDGE_INFLIGHT_BYTES: '16MiB', EDGE_BODY_LIMIT: '1MiB', EDGE_BODY_GRACE_MS: '120000', EDGE_MAX_CONNECTIONS_PER_ADDRESS: '0' });
    const uploads: SlowUpload[] = [];
    try {
      for (let i = 0; i < 40; i++) uploads.push(slowUpload(edge.target, { apiKey: edge.heavy, localAddress: ATTACKER, tickMs: 200 }));
      await until('40 slow uploads being read', async () => (await edge.status()).readingBodies === 40);
      const report = await quietTenant(edge.target, edge.quiet, 200);
      console.log(formatQuiet('40 slow uploads (one tenant)', report));
      expect(report.successRate).toBeGreaterThanOrEqual(0.95);
      // The attack held throughout: every upload still open, none answered.
      expect((await edge.status()).readingBodies).toBe(40);
      expect(uploads.filter((u) => u.settled)).toHaveLength(0);
      // Half the uploads declare 1 MiB and then trickle: still charged only for what arrived.
      for (let i = 0; i < 20; i++) uploads.push(slowUpload(edge.target, { apiKey: edge.heavy, localAddress: ATTACKER, contentLength: 1024 * 1024, tickMs: 200 }));
      await until('60 slow uploads being read', async () => (await edge.status()).readingBodies === 60);
      expect((await edge.status()).budget.bytes).toBeLessThanOrEqual(60 * 64 * 1024);
    } finally {
      for (const u of uploads) u.stop();
      await edge.close();
    }
  });

  it('a slow body is cut with 408 INGEST_ERR_BODY_TOO_SLOW once it is due (grace + bytes / rate), and its connection closed', async () => {
    const graceMs = 1000;
    const edge = await startEdge({ EDGE_BODY_GRACE_MS: String(graceMs), EDGE_MIN_BODY_BYTES_PER_SECOND: '100', EDGE_MAX_CONNECTIONS_PER_ADDRESS: '0' });
    const uploads: SlowUpload[] = [];
    try {
      // 1 byte per 100 ms = 10 bytes/s against a floor of 100 bytes/s: due shortly after the grace.
      for (let i = 0; i < 20; i++) uploads.push(slowUpload(edge.target, { apiKey: edge.heavy, localAddress: ATTACKER, tickMs: 100 }));
      const quiet = quietTenant(edge.target, edge.quiet, 100);
      const outcomes = await Promise.all(uploads.map((u) => u.done));
      console.log(formatQuiet('20 slow bodies being cut', await quiet));
      for (const o of outcomes) {
        expect(o.status).toBe(408);
        expect(o.response).toContain('INGEST_ERR_BODY_TOO_SLOW');
        expect(o.response.toLowerCase()).toContain('connection: close');
        // Not before it was due; and within the deadline, with slack for a busy machine (Node's
        // own request timeout, 30 s, would be the cut otherwise).
        expect(o.elapsedMs).toBeGreaterThanOrEqual(graceMs);
        expect(o.elapsedMs).toBeLessThan(graceMs + 10_000);
      }
      expect((await quiet).successRate).toBeGreaterThanOrEqual(0.95);
      await until('nothing held', async () => (await edge.status()).budget.bytes === 0);
    } finally {
      for (const u of uploads) u.stop();
      await edge.close();
    }
  });

  it('slowloris and idle connections are answered 408 and closed at the headers timeout', async () => {
    const edge = await startEdge({ EDGE_HEADERS_TIMEOUT_MS: '1000', EDGE_MAX_CONNECTIONS_PER_ADDRESS: '0' });
    try {
      const started = Date.now();
      const slowloris = await connectionFlood(edge.target, 100, { localAddress: ATTACKER, preamble: 'POST /v2/ingest HTTP/1.1\r\nhost: x\r\n', tickMs: 200 });
      const idle = await connectionFlood(edge.target, 100, { localAddress: ATTACKER });
      const quiet = quietTenant(edge.target, edge.quiet, 100);
      await slowloris.whenClosed(100, 15_000);
      await idle.whenClosed(100, 15_000);
      const elapsed = Date.now() - started;
      console.log(formatQuiet(`100 slowloris + 100 idle connections (all cut after ${elapsed} ms)`, await quiet));
      expect((await quiet).successRate).toBeGreaterThanOrEqual(0.95);
      expect(elapsed).toBeLessThan(15_000);
      slowloris.destroy();
      idle.destroy();
    } finally {
      await edge.close();
    }
  });

  it('failed authentication is limited per address: 429 with Retry-After after N, whatever the key; other addresses unaffected', async () => {
    const edge = await startEdge({ EDGE_AUTH_FAILURE_LIMIT: '20', EDGE_AUTH_FAILURE_WINDOW_MS: '60000' });
    const attacker = clientAgent(ATTACKER);
    try {
      const quiet = quietTenant(edge.target, edge.quiet, 100);
      const statuses: number[] = [];
      let last: Awaited<ReturnType<typeof send>> | undefined;
      for (let i = 0; i < 500; i++) {
        last = await send(edge.target, attacker, { method: 'POST', path: '/v2/ingest', headers: { authorization: `Bearer ik_wrong${i}`, 'content-type': 'application/json' }, body: '[]' });
        statuses.push(last.status);
      }
      const report = await quiet;
      console.log(formatQuiet('500 bad keys from another address', report));
      expect(statuses.slice(0, 20).every((s) => s === 401)).toBe(true);
      expect(statuses.slice(20).every((s) => s === 429)).toBe(true);
      expect(JSON.parse(last?.body ?? '{}')).toMatchObject({ error: { code: 'INGEST_ERR_TOO_MANY_AUTH_FAILURES', retryable: true } });
      const retryAfter = Number(last?.headers['retry-after']);
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(60);
      // A refused address is refused whatever it sends, so guessing can't go on behind the 429s.
      const valid = await send(edge.target, attacker, { method: 'POST', path: '/v2/ingest', headers: { authorization: `Bearer ${edge.heavy}`, 'content-type': 'application/json' }, body: '[]' });
      expect(valid.status).toBe(429);
      expect(report.successRate).toBe(1);
    } finally {
      attacker.destroy();
      await edge.close();
    }
  });
});
