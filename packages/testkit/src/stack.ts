import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { loadConfig, type IngestConfig } from '@ingest/config';
import { adminListener } from '@ingest/observability';
import type { DurableLog } from '@ingest/log';
import type { TelemetryStore } from '@ingest/storage';
import { addTenantKey } from '@ingest/tenants';
import { buildEdge } from '@ingest/edge';
import { buildNormalizer } from '@ingest/normalizer';
import { buildSinkWriter } from '@ingest/sink-writer';
import { buildAll } from '@ingest/all';
import { waitUntil } from './wait.ts';

export interface InProcessStackOptions {
  /** Extra environment for loadConfig (KAFKA_BROKERS, budgets, limits...). */
  env?: Record<string, string>;
  redis?: Redis;
  /** Wraps the real log the sink writer opens (e.g. to hold appends). */
  log?: DurableLog;
  store?: TelemetryStore;
  dataDir?: string;
  /** A fixed port for the edge (default 0: any free port), for clients configured before it starts. */
  edgePort?: number;
  /**
   * 'split' (default): the services joined by real HTTP, as three processes are. 'single': joined
   * by in-process calls, as `pnpm start` runs them. Every route listens either way.
   */
  topology?: Topology;
}

export type Topology = 'single' | 'split';
export const TOPOLOGIES: readonly Topology[] = ['single', 'split'];

export interface InProcessStack {
  config: IngestConfig;
  dataDir: string;
  edge: FastifyInstance;
  normalizer: FastifyInstance;
  sink: FastifyInstance;
  edgeUrl: string;
  sinkUrl: string;
  /** Admin listeners (/metrics, /status), each on its own port as in production. */
  edgeAdminUrl: string;
  normalizerAdminUrl: string;
  sinkAdminUrl: string;
  tenant(id: string, limits?: { entriesPerSecond?: number; bytesPerSecond?: number; requestsPerSecond?: number; queriesPerSecond?: number }): Promise<string>;
  /** Waits until the loader has loaded everything in the log (lag 0), bounded. */
  waitLoaded(timeoutMs?: number): Promise<void>;
  rowStats(tenant?: string): Promise<{ rows: number; distinctIds: number; final: number }>;
  close(): Promise<void>;
}

/** All three services in this process on port 0, wired by real HTTP or directly (`topology`). */
export async function startInProcessStack(o: InProcessStackOptions = {}): Promise<InProcessStack> {
  const ownDir = o.dataDir === undefined;
  const dataDir = o.dataDir ?? (await mkdtemp(path.join(tmpdir(), 'ingest-stack-')));
  // tenant() below polls with a key the edge may not know yet, which counts as failed
  // authentication; tests of that limit set EDGE_AUTH_FAILURE_LIMIT themselves.
  const base = loadConfig({ INGEST_DATA_DIR: dataDir, EDGE_AUTH_FAILURE_LIMIT: '0', ...o.env });
  const sinkOpts = { ...(o.log ? { log: o.log } : {}), ...(o.store ? { store: o.store } : {}) };
  let edge: FastifyInstance;
  let normalizer: FastifyInstance;
  let sink: FastifyInstance;
  let config: IngestConfig;
  let edgeUrl: string;
  let sinkUrl: string;
  if (o.topology === 'single') {
    // Exactly what `pnpm start` builds; the routes listen only so tests can reach them.
    config = { ...base, topology: 'single' };
    const roles = await buildAll({ config, logger: false, edge: { tenantsReloadMs: 200 }, sink: sinkOpts, ...(o.redis ? { redis: o.redis } : {}) });
    ({ edge, normalizer, sink } = roles);
    sinkUrl = await sink.listen({ host: '127.0.0.1', port: 0 });
    await normalizer.listen({ host: '127.0.0.1', port: 0 });
    edgeUrl = await edge.listen({ host: '127.0.0.1', port: o.edgePort ?? 0 });
  } else {
    sink = await buildSinkWriter({ config: base.sink, backends: base.backends, logger: false, ...sinkOpts });
    sinkUrl = await sink.listen({ host: '127.0.0.1', port: 0 });
    normalizer = await buildNormalizer({ config: { ...base.normalizer, sinkUrl }, logger: false });
    const normalizerUrl = await normalizer.listen({ host: '127.0.0.1', port: 0 });
    config = { ...base, topology: 'split', normalizer: { ...base.normalizer, sinkUrl }, edge: { ...base.edge, normalizerUrl, sinkUrl } };
    edge = await buildEdge({ config: config.edge, logger: false, tenantsReloadMs: 200, ...(o.redis ? { redis: o.redis } : {}) });
    edgeUrl = await edge.listen({ host: '127.0.0.1', port: o.edgePort ?? 0 });
  }
  const [edgeAdminUrl, normalizerAdminUrl, sinkAdminUrl] = await Promise.all([edge, normalizer, sink].map((app) => adminListener(app).listen({ host: '127.0.0.1', port: 0 })));

  const admin: Record<string, string> = config.sink.internalToken ? { 'x-ingest-internal-token': config.sink.internalToken } : {};
  let closed = false;
  return {
    config,
    dataDir,
    edge,
    normalizer,
    sink,
    edgeUrl,
    sinkUrl,
    edgeAdminUrl: edgeAdminUrl as string,
    normalizerAdminUrl: normalizerAdminUrl as string,
    sinkAdminUrl: sinkAdminUrl as string,
    async tenant(id, limits) {
      const { apiKey } = await addTenantKey(config.edge.tenantsFile, id, limits);
      await waitForKey(edge, apiKey, id);
      return apiKey;
    },
    async waitLoaded(timeoutMs = 60_000) {
      await waitLoaded(sinkUrl, timeoutMs, admin);
    },
    async rowStats(tenant) {
      const u = new URL('/admin/v1/row-stats', sinkUrl);
      if (tenant) u.searchParams.set('tenant', tenant);
      return (await (await fetch(u, { headers: admin })).json()) as { rows: number; distinctIds: number; final: number };
    },
    async close() {
      if (closed) return;
      closed = true;
      await edge.close();
      await normalizer.close();
      await sink.close();
      if (ownDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Waits until an edge, which polls its tenants file, takes `apiKey`. The probe is refused after
 * authentication (a content type no route takes), so it ingests nothing.
 */
export async function waitForKey(edge: FastifyInstance, apiKey: string, what = 'the key'): Promise<void> {
  await waitUntil(`${what} to be taken by the edge`, async () => {
    const r = await edge.inject({ method: 'POST', url: '/v2/ingest', headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'text/plain' }, payload: 'x' });
    return r.statusCode !== 401;
  }, 10_000, 50);
}

export async function waitLoaded(sinkUrl: string, timeoutMs = 60_000, headers: Record<string, string> = {}): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = -1;
  while (Date.now() < deadline) {
    const r = await fetch(new URL('/admin/v1/lag', sinkUrl), { headers });
    const body = (await r.json()) as { total: number };
    last = body.total;
    if (r.ok && body.total === 0) return;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error(`loader still ${last} messages behind after ${timeoutMs} ms`);
}
