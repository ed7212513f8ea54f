import { randomUUID } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import Fastify, { type FastifyInstance } from 'fastify';
import { keyMatches, keyPrefix, readTenants, fileVersion, type TenantsDoc } from '@ingest/tenants';

export interface LegacyFixtureOptions {
  /** Keys are checked against the same tenants file the v2 edge uses (a shared key store). */
  tenantsFile: string;
  /** Entries kept before the fixture answers 507: tests are bounded too. */
  maxEntries?: number;
  /** Port to listen on (127.0.0.1); default: a free one. */
  port?: number;
}

export interface LegacyRequestRecord {
  tenant: string;
  entries: number;
  /** x-ingest-version as received: the LB and the edge strip it, so this should stay undefined. */
  version: string | undefined;
  /** True when the v2 edge forwarded it (the LB had routed it by a stale set). */
  viaEdge: boolean;
}

export interface LegacyFixture {
  url: string;
  /** The LEGACY_COUNT_URL contract: GET ?tenant=&since=&until= → { buckets: [{ hour, type, count }] }. */
  countUrl: string;
  app: FastifyInstance;
  /** Distinct entry ids received for a tenant. */
  ids(tenant: string): Set<string>;
  requests(): readonly LegacyRequestRecord[];
  close(): Promise<void>;
}

interface Kept {
  type: string;
  ts: number;
}

/**
 * A stand-in for the legacy pipeline: a real HTTP server that authenticates the key, takes the
 * same bodies as v2 (JSON array, {entries}, NDJSON, gzip), keeps each entry once by id, and
 * answers the count endpoint a real legacy pipeline must expose for parity.
 */
export async function startLegacyFixture(o: LegacyFixtureOptions): Promise<LegacyFixture> {
  const maxEntries = o.maxEntries ?? 1_000_000;
  const byTenant = new Map<string, Map<string, Kept>>();
  const log: LegacyRequestRecord[] = [];
  let total = 0;
  let tenants: TenantsDoc = { version: 1, tenants: {} };
  let version = '';

  const tenantOf = async (auth: string | undefined): Promise<string | undefined> => {
    const key = /^Bearer\s+(\S+)$/i.exec(auth ?? '')?.[1];
    const prefix = key ? keyPrefix(key) : undefined;
    if (!key || !prefix) return undefined;
    const v = await fileVersion(o.tenantsFile);
    if (v !== version) {
      tenants = await readTenants(o.tenantsFile);
      version = v;
    }
    for (const [t, rec] of Object.entries(tenants.tenants)) {
      if (rec.keys.some((k) => k.revokedAt === null && k.prefix === prefix && keyMatches(key, k.sha256))) return t;
    }
    return undefined;
  };

  const app = Fastify({ logger: false, bodyLimit: 16 * 1024 * 1024 });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  app.post('/v2/ingest', async (req, reply) => {
    const tenant = await tenantOf(req.headers.authorization);
    if (!tenant) return reply.code(401).send({ error: { code: 'LEGACY_UNAUTHENTICATED', message: 'unknown key', retryable: false } });
    let raw = req.body as Buffer;
    if (req.headers['content-encoding'] === 'gzip') raw = gunzipSync(raw, { maxOutputLength: 64 * 1024 * 1024 });
    const text = raw.toString('utf8');
    let entries: unknown[];
    try {
      const trimmed = text.trimStart();
      if (trimmed.startsWith('[')) entries = JSON.parse(text) as unknown[];
      else if (trimmed.startsWith('{') && !text.trim().includes('\n')) {
        const obj = JSON.parse(text) as { entries?: unknown[] };
        entries = Array.isArray(obj.entries) ? obj.entries : [obj];
      } else entries = text.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as unknown);
    } catch (e) {
      return reply.code(400).send({ error: { code: 'LEGACY_BAD_BODY', message: (e as Error).message, retryable: false } });
    }
    if (total + entries.length > maxEntries) return reply.code(507).send({ error: { code: 'LEGACY_FULL', message: 'fixture full', retryable: false } });
    const kept = byTenant.get(tenant) ?? new Map<string, Kept>();
    byTenant.set(tenant, kept);
    for (const e of entries) {
      const entry = e as { id?: unknown; type?: unknown; timestamp?: unknown };
      const id = typeof entry.id === 'string' ? entry.id : randomUUID();
      const ts = typeof entry.timestamp === 'number' ? entry.timestamp : Date.parse(String(entry.timestamp));
      if (!kept.has(id)) total++;
      kept.set(id, { type: String(entry.type), ts: Number.isFinite(ts) ? ts : Date.now() });
    }
    if (log.length < 100_000) {
      const v = req.headers['x-ingest-version'];
      log.push({ tenant, entries: entries.length, version: typeof v === 'string' ? v : undefined, viaEdge: req.headers['x-ingest-forwarded-by'] === 'edge' });
    }
    return { accepted: entries.length, rejected: [] };
  });

  app.get('/legacy/v1/counts', async (req, reply) => {
    const q = req.query as { tenant?: string; since?: string; until?: string };
    if (!q.tenant) return reply.code(400).send({ error: { code: 'LEGACY_BAD_QUERY', message: 'tenant is required', retryable: false } });
    const since = Number(q.since ?? 0);
    const until = Number(q.until ?? Number.MAX_SAFE_INTEGER);
    const counts = new Map<string, number>();
    for (const k of byTenant.get(q.tenant)?.values() ?? []) {
      if (k.ts < since || k.ts >= until) continue;
      const hour = new Date(Math.floor(k.ts / 3_600_000) * 3_600_000).toISOString();
      const key = `${hour}|${k.type}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    return { buckets: [...counts].map(([k, count]) => ({ hour: k.split('|')[0], type: k.split('|')[1], count })) };
  });

  const url = await app.listen({ host: '127.0.0.1', port: o.port ?? 0 });
  let closing: Promise<void> | undefined;
  return {
    url,
    countUrl: `${url}/legacy/v1/counts`,
    app,
    ids: (tenant) => new Set(byTenant.get(tenant)?.keys() ?? []),
    requests: () => log,
    close() {
      closing ??= app.close();
      return closing;
    },
  };
}
