import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '@ingest/fsutil';
import { readTenants, validTenantId, withTenantsLock, type TenantsDoc } from './file.ts';

/**
 * The cut-over set: which tenants the v2 pipeline is authoritative for. It lives in ONE file next
 * to tenants.json; the load balancer's routing table (nginx map, envoy routes) is rendered from it
 * and the edge re-reads it, so the two can never be configured apart — only be briefly stale,
 * which the edge's enforcement covers (see runbooks/cutover.md).
 *
 *   v2      the v2 pipeline is authoritative: the LB sends the tenant to the edge with x-ingest-version: v2
 *   mirror  legacy is authoritative; the LB copies each request to the edge, which writes it to the mirror table (telemetry_mirror)
 *   (absent) legacy: the LB sends the tenant to the legacy pipeline only
 */
export type CutoverState = 'v2' | 'mirror';
export type TenantRoute = CutoverState | 'legacy';

export const CUTOVER_STATES: readonly CutoverState[] = ['v2', 'mirror'];

export interface CutoverEntry {
  state: CutoverState;
  /** When the tenant entered this state (ISO 8601). */
  since: string;
}

export interface CutoverDoc {
  version: 1;
  /**
   * Bumped on every write. The LB's rendered config and every edge report the generation they
   * run, so "has this change taken effect everywhere" is a comparison of numbers.
   */
  generation: number;
  updatedAt: string;
  tenants: Record<string, CutoverEntry>;
}

export function emptyCutover(): CutoverDoc {
  return { version: 1, generation: 0, updatedAt: new Date(0).toISOString(), tenants: Object.create(null) as Record<string, CutoverEntry> };
}

/** Parses and validates a cut-over document; throws with the file name on anything unexpected. */
export function parseCutover(text: string, file = 'cutover.json'): CutoverDoc {
  const raw = JSON.parse(text) as Partial<CutoverDoc>;
  if (raw.version !== 1 || typeof raw.tenants !== 'object' || raw.tenants === null) {
    throw new Error(`${file}: not a cut-over file (expected {"version":1,"generation":N,"tenants":{...}})`);
  }
  if (typeof raw.generation !== 'number' || !Number.isSafeInteger(raw.generation) || raw.generation < 0) {
    throw new Error(`${file}: generation must be a non-negative integer`);
  }
  // Object.create(null): a tenant named like an Object.prototype member stays plain data.
  const tenants = Object.create(null) as Record<string, CutoverEntry>;
  for (const [tenant, e] of Object.entries(raw.tenants)) {
    if (!validTenantId(tenant)) throw new Error(`${file}: "${tenant.slice(0, 64)}" is not a valid tenant id`);
    const entry = e as Partial<CutoverEntry> | null;
    if (!entry || !CUTOVER_STATES.includes(entry.state as CutoverState)) {
      throw new Error(`${file}: tenant ${tenant} has state ${JSON.stringify(entry?.state)}; expected one of ${CUTOVER_STATES.join(', ')}`);
    }
    tenants[tenant] = { state: entry.state as CutoverState, since: typeof entry.since === 'string' ? entry.since : '' };
  }
  return { version: 1, generation: raw.generation, updatedAt: typeof raw.updatedAt === 'string' ? raw.updatedAt : '', tenants };
}

/** The file's document, or undefined when there is no file (no migration configured yet). */
export async function readCutoverFile(file: string): Promise<CutoverDoc | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  return parseCutover(text, file);
}

/** Like readCutoverFile, with an absent file read as "nobody cut over". */
export async function readCutover(file: string): Promise<CutoverDoc> {
  return (await readCutoverFile(file)) ?? emptyCutover();
}

/**
 * Whether a migration is in progress: at least one tenant mirrored or on v2. An absent file and an
 * empty set mean the same — nobody has started moving — so removing the last tenant returns an
 * edge without LEGACY_URL to taking everything, exactly as before the first `cutover add`, instead
 * of refusing every tenant for want of a legacy pipeline to forward to.
 */
export function cutoverActive(doc: CutoverDoc | undefined): boolean {
  return doc !== undefined && Object.keys(doc.tenants).length > 0;
}

export function routeOf(doc: CutoverDoc, tenant: string): TenantRoute {
  return doc.tenants[tenant]?.state ?? 'legacy';
}

export interface CutoverFiles {
  tenantsFile: string;
  cutoverFile: string;
}

export interface CutoverChange {
  tenant: string;
  previous: TenantRoute;
  current: TenantRoute;
  /** False when the tenant already was in the asked state (the file is left untouched). */
  changed: boolean;
  doc: CutoverDoc;
  tenants: TenantsDoc;
}

/** The set changed between planning a change and applying it (another operator's change). */
export class CutoverConflictError extends Error {
  constructor(expected: number, found: number) {
    super(`the cut-over set changed while this change was being checked (generation ${expected} → ${found}); nothing was written, run the command again`);
    this.name = 'CutoverConflictError';
  }
}

/**
 * Sets one tenant's route and runs `publish` (render the LB's map) while still holding the tenants
 * lock, so two operators' changes are written and rendered in the same order and a rendered map
 * never mixes one operator's set with another's. A tenant must exist to be cut over or mirrored
 * (a typo must not silently route nothing); sending one back to legacy needs no such check.
 */
export async function setTenantRoute(
  files: CutoverFiles,
  tenant: string,
  route: TenantRoute,
  publish?: (doc: CutoverDoc, tenants: TenantsDoc) => Promise<void>,
  opts: { expectGeneration?: number } = {},
): Promise<CutoverChange> {
  if (!validTenantId(tenant)) throw new Error(`tenant id "${tenant.slice(0, 64)}" is not valid`);
  return withTenantsLock(files.tenantsFile, async () => {
    const tenants = await readTenants(files.tenantsFile);
    if (route !== 'legacy' && !tenants.tenants[tenant]) throw new Error(`no tenant "${tenant}" in ${files.tenantsFile}`);
    const doc = await readCutover(files.cutoverFile);
    // A change planned (and checked) against one set must not be applied to another.
    if (opts.expectGeneration !== undefined && doc.generation !== opts.expectGeneration) throw new CutoverConflictError(opts.expectGeneration, doc.generation);
    const previous = routeOf(doc, tenant);
    const changed = previous !== route;
    if (changed) {
      const now = new Date().toISOString();
      if (route === 'legacy') delete doc.tenants[tenant];
      else doc.tenants[tenant] = { state: route, since: now };
      doc.generation += 1;
      doc.updatedAt = now;
      await mkdir(path.dirname(files.cutoverFile), { recursive: true });
      await writeFileAtomic(files.cutoverFile, JSON.stringify(doc, null, 2) + '\n');
    }
    // Published even when unchanged: re-running a command repairs a map that was lost or edited.
    await publish?.(doc, tenants);
    return { tenant, previous, current: route, changed, doc, tenants };
  });
}

/** Runs `fn` on the current set and tenants under the lock (a re-render after key changes). */
export async function withCutoverSnapshot<T>(files: CutoverFiles, fn: (doc: CutoverDoc, tenants: TenantsDoc) => Promise<T>): Promise<T> {
  return withTenantsLock(files.tenantsFile, async () => fn(await readCutover(files.cutoverFile), await readTenants(files.tenantsFile)));
}

// ---------------------------------------------------------------------------------------------
// Rendering the load balancer's routing table.

/** A key's public prefix as the LB sees it; anything else is never rendered into LB config. */
const PREFIX_RE = /^ik_[A-Za-z0-9]{8}$/;

export interface RouteMapEntry {
  prefix: string;
  tenant: string;
  route: CutoverState;
}

/**
 * One row per live key of each cut-over or mirrored tenant, sorted so the rendered file is
 * byte-identical for the same set (a re-render that changes nothing is visibly a no-op).
 */
export function routeMapEntries(tenants: TenantsDoc, cut: CutoverDoc): RouteMapEntry[] {
  const out: RouteMapEntry[] = [];
  for (const [tenant, entry] of Object.entries(cut.tenants)) {
    const rec = tenants.tenants[tenant];
    if (!rec) continue;
    for (const k of rec.keys) {
      if (k.revokedAt !== null || !PREFIX_RE.test(k.prefix)) continue;
      out.push({ prefix: k.prefix, tenant, route: entry.state });
    }
  }
  return out.sort((a, b) => (a.prefix < b.prefix ? -1 : a.prefix > b.prefix ? 1 : 0));
}

/** Live key prefixes of every tenant: needed to spot prefixes nginx would confuse. */
function allLivePrefixes(tenants: TenantsDoc): string[] {
  const out: string[] = [];
  for (const rec of Object.values(tenants.tenants)) for (const k of rec.keys) if (k.revokedAt === null && PREFIX_RE.test(k.prefix)) out.push(k.prefix);
  return out;
}

export interface RenderedNginx {
  /** Entries for `map $ingest_key_prefix $ingest_route { default legacy; include …; }`. */
  map: string;
  /** One line for `map $host $cutover_generation { include …; }`. */
  generation: string;
  /** Prefixes rendered as case-sensitive regexes because another live key differs only by case. */
  caseCollisions: string[];
}

/**
 * nginx compares map strings case-insensitively (checked against Debian's 1.22), and key ids are
 * mixed-case, so `ik_AbCdEfGh` and `ik_abcdefgh` would share one entry. Exact strings are a hash
 * lookup; only a prefix whose lower-case form is shared with another live key is written as a
 * case-sensitive regex (tried after the hash, in order), so the common case stays O(1).
 */
export function renderNginxMap(entries: RouteMapEntry[], tenants: TenantsDoc, generation: number): RenderedNginx {
  const folded = new Map<string, number>();
  for (const p of allLivePrefixes(tenants)) folded.set(p.toLowerCase(), (folded.get(p.toLowerCase()) ?? 0) + 1);
  const lines = [`# Rendered by \`ingestctl cutover\` from cutover.json generation ${generation}; do not edit.`, `# key prefix -> route (absent = legacy)`];
  const collisions: string[] = [];
  for (const e of entries) {
    // Validated again here: this text becomes nginx configuration.
    if (!PREFIX_RE.test(e.prefix) || !validTenantId(e.tenant)) throw new Error(`refusing to render ${JSON.stringify(e)}`);
    if ((folded.get(e.prefix.toLowerCase()) ?? 0) > 1) {
      collisions.push(e.prefix);
      lines.push(`"~^${e.prefix}$" ${e.route}; # ${e.tenant} (case-sensitive: another key differs only by case)`);
    } else {
      lines.push(`"${e.prefix}" ${e.route}; # ${e.tenant}`);
    }
  }
  return { map: lines.join('\n') + '\n', generation: `default "${generation}";\n`, caseCollisions: collisions };
}

export interface EnvoyRenderOptions {
  routeConfigName?: string;
  edgeCluster?: string;
  legacyCluster?: string;
  /** A cluster that points at Envoy's own mirror-marking listener (see deploy/envoy/envoy.yaml). */
  mirrorCluster?: string;
  timeout?: string;
}

/**
 * The RouteConfiguration envoy loads from a watched file (path_config_source): one route per live
 * key prefix of a cut-over or mirrored tenant, then a catch-all to legacy. Envoy header matching is
 * case-sensitive, so no collision handling is needed here. JSON is valid YAML, and JSON.stringify
 * quotes every value, so nothing in it can be read as YAML syntax.
 */
export function renderEnvoyRoutes(entries: RouteMapEntry[], generation: number, o: EnvoyRenderOptions = {}): string {
  const edge = o.edgeCluster ?? 'ingest_edge';
  const legacy = o.legacyCluster ?? 'ingest_legacy';
  const mirror = o.mirrorCluster ?? 'ingest_mirror_marker';
  const timeout = o.timeout ?? '35s';
  const strip = ['x-ingest-version', 'x-ingest-mirror'];
  const routes: unknown[] = entries.map((e) => {
    if (!PREFIX_RE.test(e.prefix)) throw new Error(`refusing to render ${JSON.stringify(e)}`);
    const match = { prefix: '/', headers: [{ name: 'authorization', string_match: { safe_regex: { regex: `(?i:bearer)\\s+${e.prefix}_.*` } } }] };
    if (e.route === 'v2') {
      return {
        name: `${e.tenant}/${e.prefix}`,
        match,
        route: { cluster: edge, timeout },
        request_headers_to_remove: ['x-ingest-mirror'],
        request_headers_to_add: [{ header: { key: 'x-ingest-version', value: 'v2' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }],
      };
    }
    return {
      name: `${e.tenant}/${e.prefix}`,
      match,
      route: { cluster: legacy, timeout, request_mirror_policies: [{ cluster: mirror }] },
      request_headers_to_remove: strip,
    };
  });
  routes.push({ name: 'legacy', match: { prefix: '/' }, route: { cluster: legacy, timeout }, request_headers_to_remove: strip });
  const doc = {
    version_info: String(generation),
    resources: [
      {
        '@type': 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration',
        name: o.routeConfigName ?? 'ingest_cutover',
        response_headers_to_add: [{ header: { key: 'x-ingest-cutover-generation', value: String(generation) }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }],
        virtual_hosts: [{ name: 'ingest', domains: ['*'], routes }],
      },
    ],
  };
  return JSON.stringify(doc, null, 2) + '\n';
}
