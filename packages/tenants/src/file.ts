import { mkdir, readFile } from 'node:fs/promises';
import { acquireLockFile, LockHeldError, writeFileAtomic, type HeldLock } from '@ingest/fsutil';
import path from 'node:path';
import { generateApiKey } from './keys.ts';

/** Per-tenant overrides of the edge's defaults; absent fields use the defaults. */
export interface TenantLimits {
  requestsPerSecond?: number;
  entriesPerSecond?: number;
  bytesPerSecond?: number;
  /** GET /v2/query requests per second (its own bucket); TENANT_DEFAULT_QPS when absent. */
  queriesPerSecond?: number;
}

export interface StoredKey {
  prefix: string;
  sha256: string;
  createdAt: string;
  revokedAt: string | null;
}

export interface TenantRecord {
  keys: StoredKey[];
  limits: TenantLimits;
  createdAt: string;
}

export interface TenantsDoc {
  version: 1;
  tenants: Record<string, TenantRecord>;
}

const TENANT_RE = /^[a-z0-9][a-z0-9_-]{0,62}$/;

export function validTenantId(id: string): boolean {
  return TENANT_RE.test(id);
}

export async function readTenants(file: string): Promise<TenantsDoc> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, tenants: {} };
    throw e;
  }
  const doc = JSON.parse(text) as TenantsDoc;
  if (doc.version !== 1 || typeof doc.tenants !== 'object' || doc.tenants === null) {
    throw new Error(`${file}: not a tenants file (expected {"version":1,"tenants":{...}})`);
  }
  // Object.create(null) so a tenant named like an Object.prototype member is still only data.
  return { version: 1, tenants: Object.assign(Object.create(null) as Record<string, TenantRecord>, doc.tenants) };
}

/** Replaced atomically: the edges polling it see the old file or the new one, never half. */
export async function writeTenants(file: string, doc: TenantsDoc): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  // 0o600: the file holds key hashes.
  await writeFileAtomic(file, JSON.stringify(doc, null, 2) + '\n', { mode: 0o600 });
}


/**
 * Read-modify-write of the tenants file under a lock: a lock file across processes (two operators,
 * or a test and a CLI) and a promise chain within one. The lock is held for one short change, so a
 * writer waits up to 10 s for another to finish; a lock left by a crashed writer is taken over.
 */
let local: Promise<unknown> = Promise.resolve();

export function withTenantsLock<T>(file: string, fn: () => Promise<T>): Promise<T> {
  const run = local.then(() => withFileLock(file + '.lock', fn));
  local = run.catch(() => undefined);
  return run;
}

async function withFileLock<T>(lockFile: string, fn: () => Promise<T>): Promise<T> {
  await mkdir(path.dirname(lockFile), { recursive: true });
  let lock: HeldLock;
  try {
    lock = await acquireLockFile(lockFile, { waitMs: 10_000 });
  } catch (e) {
    if (!(e instanceof LockHeldError)) throw e;
    throw new Error(`${lockFile} is held by running process ${e.holder}; wait for that ingestctl to finish`, { cause: e });
  }
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}

/** Adds a tenant (or a key to an existing one) and returns the new key — shown once, never stored. */
export async function addTenantKey(file: string, tenant: string, limits?: TenantLimits): Promise<{ apiKey: string; prefix: string; created: boolean }> {
  if (!validTenantId(tenant)) throw new Error(`tenant id "${tenant.slice(0, 64)}" must match ${TENANT_RE}`);
  return withTenantsLock(file, async () => {
    const doc = await readTenants(file);
    const now = new Date().toISOString();
    const k = generateApiKey();
    const existing = doc.tenants[tenant];
    const rec: TenantRecord = existing ?? { keys: [], limits: {}, createdAt: now };
    rec.keys.push({ prefix: k.prefix, sha256: k.sha256, createdAt: now, revokedAt: null });
    if (limits) rec.limits = { ...rec.limits, ...limits };
    doc.tenants[tenant] = rec;
    await writeTenants(file, doc);
    return { apiKey: k.key, prefix: k.prefix, created: existing === undefined };
  });
}

/** Revokes every live key of the tenant whose prefix starts with the given text; returns how many. */
export async function revokeTenantKey(file: string, tenant: string, prefix: string): Promise<number> {
  if (prefix.length < 4) throw new Error('give at least 4 characters of the key prefix');
  return withTenantsLock(file, async () => {
    const doc = await readTenants(file);
    const rec = doc.tenants[tenant];
    if (!rec) throw new Error(`no tenant "${tenant.slice(0, 64)}"`);
    let n = 0;
    const now = new Date().toISOString();
    for (const k of rec.keys) {
      if (k.revokedAt === null && k.prefix.startsWith(prefix)) {
        k.revokedAt = now;
        n++;
      }
    }
    if (n > 0) await writeTenants(file, doc);
    return n;
  });
}
