import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addTenantKey } from '@ingest/tenants';
import { freePort, startService, type ServiceProcess } from '@ingest/supervisor';
import { connectionFlood, formatQuiet, quietTenant, slowUpload, startFakeNormalizer, targetOf, type SlowUpload } from '@ingest/testkit';

/**
 * The edge as a real process (main.ts: config, signals, its own open-file limit), against a
 * stand-in normalizer. Attackers connect from 127.0.0.2, the quiet tenant from 127.0.0.1.
 */

const ATTACKER = '127.0.0.2';
let dir: string;
let normalizer: { url: string; close(): Promise<void> };

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'edge-proc-'));
  normalizer = await startFakeNormalizer();
});
afterAll(async () => {
  await normalizer.close();
  await rm(dir, { recursive: true, force: true });
});

let n = 0;
async function startEdge(env: Record<string, string>, openFileLimit?: number): Promise<{ edge: ServiceProcess; heavy: string; quiet: string; logFile: string }> {
  const tenantsFile = path.join(dir, `tenants-${n}.json`);
  const logFile = path.join(dir, `edge-${n++}.log`);
  const heavy = (await addTenantKey(tenantsFile, 'heavy')).apiKey;
  const quiet = (await addTenantKey(tenantsFile, 'quiet')).apiKey;
  const edge = await startService('edge', {
    port: await freePort(),
    env: { INGEST_DATA_DIR: dir, TENANTS_FILE: tenantsFile, NORMALIZER_URL: normalizer.url, ...env },
    logFile,
    ...(openFileLimit !== undefined ? { openFileLimit } : {}),
  });
  return { edge, heavy, quiet, logFile };
}

interface Status {
  connections: { open: number; maxConnections: number; maxPerAddress: number; openFileLimit: number | null; refused: { max_connections: number; per_address: number } };
}

async function status(adminUrl: string): Promise<Status> {
  return (await (await fetch(new URL('/status', adminUrl))).json()) as Status;
}

describe('edge process: many connections', () => {
  it('idle-connection flood past the open-file limit (ulimit -n 256): the flood is capped per address and a new client is still served', async () => {
    const { edge, quiet, logFile } = await startEdge({ EDGE_MAX_CONNECTIONS_PER_ADDRESS: '64' }, 256);
    const flood = await connectionFlood(targetOf(edge.url), 400, { localAddress: ATTACKER });
    try {
      // Everything over the attacker's 64 is closed on arrival, long before any timeout.
      await flood.whenClosed(400 - 64, 15_000);
      const report = await quietTenant(targetOf(edge.url), quiet, 100);
      console.log(formatQuiet('400 idle connections from one address, ulimit -n 256', report));
      expect(report.successRate).toBe(1);
      const s = await status(edge.adminUrl);
      expect(s.connections).toMatchObject({ openFileLimit: 256, maxConnections: 128, maxPerAddress: 64 });
      expect(s.connections.refused.per_address).toBeGreaterThanOrEqual(400 - 64);
      const log = await readFile(logFile, 'utf8');
      expect(log).toContain('"openFileLimit":256');
      expect(log).toMatch(/"reason":"per_address".*"msg":"connection refused"/);
      // Rate-limited: hundreds refused, a handful of lines.
      expect(log.match(/connection refused/g)?.length ?? 0).toBeLessThan(5);
    } finally {
      flood.destroy();
      await edge.stop();
    }
  });

  it('idle connections past the global cap (per-address cap off): the excess is closed on arrival (no EMFILE), and once the idle ones time out a new client is served', async () => {
    const { edge, quiet } = await startEdge({ EDGE_MAX_CONNECTIONS_PER_ADDRESS: '0', EDGE_HEADERS_TIMEOUT_MS: '2000' }, 256);
    const flood = await connectionFlood(targetOf(edge.url), 400, { localAddress: ATTACKER });
    try {
      await flood.whenClosed(400 - 128, 15_000);
      // The cap holds the flood's 128; they say nothing, so the headers timeout ends them.
      await flood.whenClosed(400, 15_000);
      const report = await quietTenant(targetOf(edge.url), quiet, 100);
      console.log(formatQuiet('400 idle connections past the global cap, after the headers timeout', report));
      expect(report.successRate).toBe(1);
      const s = await status(edge.adminUrl);
      expect(s.connections.refused.max_connections).toBeGreaterThanOrEqual(400 - 128);
    } finally {
      flood.destroy();
      await edge.stop();
    }
  });
});

describe('edge process: shutdown', () => {
  it('SIGTERM with slow uploads open: they are cut with 503 at the drain deadline, nothing half-read acknowledged, and the edge exits 0 in time', async () => {
    const drainMs = 2000;
    const { edge, heavy, quiet } = await startEdge({ EDGE_DRAIN_TIMEOUT_MS: String(drainMs), EDGE_BODY_GRACE_MS: '120000' });
    const uploads: SlowUpload[] = [];
    try {
      for (let i = 0; i < 3; i++) uploads.push(slowUpload(targetOf(edge.url), { apiKey: heavy, localAddress: ATTACKER, tickMs: 100 }));
      const deadline = Date.now() + 15_000;
      while (Date.now() < deadline && ((await (await fetch(new URL('/status', edge.adminUrl))).json()) as { readingBodies: number }).readingBodies < 3) await new Promise((r) => setImmediate(r));
      const before = await quietTenant(targetOf(edge.url), quiet, 20);
      console.log(formatQuiet('3 slow uploads, before SIGTERM', before));
      expect(before.successRate).toBe(1);
      const t0 = Date.now();
      edge.child.kill('SIGTERM');
      const code = await edge.exited;
      const took = Date.now() - t0;
      console.log(`edge exited ${code} ${took} ms after SIGTERM (drain deadline ${drainMs} ms)`);
      expect(code).toBe(0);
      expect(took).toBeGreaterThanOrEqual(drainMs);
      // The deadline, a second for the cut answers, and slack for a busy machine: not "never".
      expect(took).toBeLessThan(drainMs + 10_000);
      for (const o of await Promise.all(uploads.map((u) => u.done))) {
        expect(o.status === undefined || o.status === 503).toBe(true);
        if (o.status === 503) expect(o.response).toContain('INGEST_ERR_SHUTTING_DOWN');
      }
    } finally {
      for (const u of uploads) u.stop();
      await edge.stop();
    }
  });

  it('a supervised edge ignores SIGINT (Ctrl-C reaches it through the supervisor) and drains once on SIGTERM', async () => {
    const { edge, quiet, logFile } = await startEdge({});
    try {
      edge.child.kill('SIGINT');
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline && !(await readFile(logFile, 'utf8')).includes('SIGINT ignored')) await new Promise((r) => setImmediate(r));
      expect((await quietTenant(targetOf(edge.url), quiet, 10)).successRate).toBe(1);
      edge.child.kill('SIGTERM');
      expect(await edge.exited).toBe(0);
      const log = await readFile(logFile, 'utf8');
      expect(log.match(/"msg":"draining"/g)).toHaveLength(1);
    } finally {
      await edge.stop();
    }
  });
});
