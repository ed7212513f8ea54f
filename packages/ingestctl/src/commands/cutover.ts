import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ENTRY_TYPES } from '@ingest/contracts';
import { writeFileAtomic } from '@ingest/fsutil';
import { TABLES, TelemetryStore, type TableName } from '@ingest/storage';
import {
  cutoverActive,
  CutoverConflictError,
  readCutover,
  readTenants,
  renderEnvoyRoutes,
  renderNginxMap,
  routeMapEntries,
  routeOf,
  setTenantRoute,
  withCutoverSnapshot,
  type CutoverChange,
  type CutoverDoc,
  type CutoverFiles,
  type TenantRoute,
  type TenantsDoc,
} from '@ingest/tenants';
import { adminHeaders, parse, table, tenantsFile, UnreachableError, UsageError, whyUnreachable, type Command, type Io } from '../cli.ts';
import { EXIT, type ExitCode } from '../exit-codes.ts';
import { checkEdges, formatEdgeCheck, withRoute, type EdgeView } from './cutover-plan.ts';

const HELP = `ingestctl cutover — move tenants from the legacy pipeline to v2, one at a time

  ingestctl cutover list [--json]
  ingestctl cutover add <tenant> [--dry-run] [--force] [--json]     route the tenant to v2 (v2 authoritative)
  ingestctl cutover mirror <tenant> [--dry-run] [--force] [--json]  legacy authoritative, a copy into v2's mirror table
  ingestctl cutover remove <tenant> [--dry-run] [--force] [--json]  back to legacy only (rollback)
  ingestctl cutover status [<tenant>] [--hours N] [--json] set, LB and edge generations (and each edge's
                                                           legacy); with a tenant, parity: entries per type
                                                           and hour, legacy vs v2. What could not be compared
                                                           is printed as "not checked" and exits 1
  ingestctl cutover sync [--json]                          re-render the LB map and reload (after
                                                           \`tenants add\` or \`revoke-key\` on a cut-over tenant)

Before a change, every edge in CUTOVER_EDGE_URLS is asked (GET /status) whether it has LEGACY_URL
and can reach it, and the plan shows what each edge would do with every tenant. A change that
would make any edge refuse a tenant it serves now (503: no legacy to forward to) is refused, as is
one no edge could be asked about; --force applies it anyway. An empty set means no migration: an
edge without LEGACY_URL then takes every tenant, as before the first add.

A change writes the set (CUTOVER_FILE, default cutover.json beside the tenants file), renders the
LB's routing table from it, waits until the edges run the new set, reloads nginx and waits until
only the new config takes requests: when the command returns, the next request goes the new way.

Environment:
  CUTOVER_NGINX_DIR       where cutover-map.conf and cutover-generation.conf are written (default: nginx/ beside the tenants file)
  NGINX_CONF NGINX_PREFIX the nginx to reload (nginx -p PREFIX -c CONF -s reload); unset: render only
  NGINX_BIN NGINX_PID     default nginx, PREFIX/nginx.pid (to wait for old workers to stop accepting)
  NGINX_URL               nginx base URL, to read /_cutover/generation after a reload
  CUTOVER_ENVOY_RDS       also render envoy's route file here (deploy/envoy)
  CUTOVER_EDGE_URLS       every edge's admin URL (comma list; EDGE_ADMIN_PORT, 9080): checked before a
                          change, waited for after it;
                          unset: changes are refused unless --force (then CUTOVER_EDGE_SETTLE_MS, 1500)
  LEGACY_COUNT_URL        legacy's count endpoint for parity (see runbooks/cutover.md)
  CLICKHOUSE_URL | SINK_URL  where v2 counts are read (as \`ingestctl query\`)

Exit codes: status 0 parity OK / in sync, 1 MISMATCH, not in sync or not checked; add, mirror,
remove 0 done (or, with --dry-run, a plan that would be applied), 1 refused (unknown tenant, an
edge would refuse tenants, edges not checked); any command 2 usage, 3 a service (an edge) did not
answer, 4 the change was written but did not take effect everywhere. The full table: ingestctl --help.`;

const WAIT_MS = 15_000;

export interface CutoverEnv {
  files: CutoverFiles;
  nginxDir: string;
  nginx?: { bin: string; prefix: string; conf: string; errorLog: string; pidFile: string; url?: string };
  envoyRds?: string;
  edgeUrls: string[];
  edgeSettleMs: number;
}

export function cutoverEnv(env: Io['env']): CutoverEnv {
  const tf = tenantsFile(env);
  const dir = path.dirname(tf);
  const prefix = env['NGINX_PREFIX'];
  const conf = env['NGINX_CONF'];
  const settle = env['CUTOVER_EDGE_SETTLE_MS'];
  const settleMs = settle === undefined || settle === '' ? 1500 : Number(settle);
  if (!Number.isInteger(settleMs) || settleMs < 0 || settleMs > 60_000) throw new UsageError(`CUTOVER_EDGE_SETTLE_MS=${settle} must be 0..60000`);
  if (conf && !prefix) throw new UsageError('NGINX_CONF needs NGINX_PREFIX');
  const nginxUrl = env['NGINX_URL'];
  return {
    files: { tenantsFile: tf, cutoverFile: env['CUTOVER_FILE'] || path.join(dir, 'cutover.json') },
    nginxDir: env['CUTOVER_NGINX_DIR'] || path.join(dir, 'nginx'),
    ...(conf && prefix
      ? {
          nginx: {
            bin: env['NGINX_BIN'] || 'nginx',
            prefix,
            conf,
            errorLog: env['NGINX_ERROR_LOG'] || path.join(prefix, 'logs', 'error.log'),
            pidFile: env['NGINX_PID'] || path.join(prefix, 'nginx.pid'),
            ...(nginxUrl ? { url: nginxUrl } : {}),
          },
        }
      : {}),
    ...(env['CUTOVER_ENVOY_RDS'] ? { envoyRds: env['CUTOVER_ENVOY_RDS'] } : {}),
    edgeUrls: (env['CUTOVER_EDGE_URLS'] ?? '').split(',').map((s) => s.trim()).filter(Boolean),
    edgeSettleMs: settleMs,
  };
}

/** Writes the LB's routing table for this set: nginx map + generation, and envoy routes if asked. */
export async function renderRouting(ce: CutoverEnv, doc: CutoverDoc, tenants: TenantsDoc): Promise<{ entries: number; caseCollisions: string[] }> {
  const entries = routeMapEntries(tenants, doc);
  const r = renderNginxMap(entries, tenants, doc.generation);
  // Map before generation: a reader that sees the new generation also sees the new map.
  await mkdir(ce.nginxDir, { recursive: true });
  await writeFileAtomic(path.join(ce.nginxDir, 'cutover-map.conf'), r.map);
  await writeFileAtomic(path.join(ce.nginxDir, 'cutover-generation.conf'), r.generation);
  if (ce.envoyRds) {
    await mkdir(path.dirname(ce.envoyRds), { recursive: true });
    await writeFileAtomic(ce.envoyRds, renderEnvoyRoutes(entries, doc.generation));
  }
  return { entries: entries.length, caseCollisions: r.caseCollisions };
}

/** GET over a fresh connection (agent: false), so a keep-alive socket to an old nginx worker can't answer. */
function getFresh(url: URL, timeoutMs: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        if (body.length < 65_536) body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url.origin} within ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

export async function edgeGeneration(edgeUrl: string): Promise<number | undefined> {
  const r = await getFresh(new URL('/status', edgeUrl), 3000);
  const body = JSON.parse(r.body) as { cutover?: { generation?: number } };
  return body.cutover?.generation;
}

export async function nginxGeneration(nginxUrl: string): Promise<number | undefined> {
  const r = await getFresh(new URL('/_cutover/generation', nginxUrl), 3000);
  const n = Number(r.body.trim());
  return r.status === 200 && Number.isInteger(n) ? n : undefined;
}

/**
 * Edges poll the set (≤ 1 s). They are brought up to date BEFORE the LB changes, so a tenant just
 * cut over is never sent by the new LB config to an edge that still forwards it to legacy (which
 * would be correct, but not "the next request goes to v2"); rollback is safe in either order.
 */
async function waitEdges(ce: CutoverEnv, generation: number): Promise<string> {
  if (ce.edgeUrls.length === 0) {
    await sleep(ce.edgeSettleMs);
    return `waited ${ce.edgeSettleMs} ms for edges to re-read the set`;
  }
  const deadline = Date.now() + WAIT_MS;
  for (const url of ce.edgeUrls) {
    for (;;) {
      const g = await edgeGeneration(url).catch(() => undefined);
      if (g !== undefined && g >= generation) break;
      if (Date.now() > deadline) throw new Error(`edge ${url} has not loaded cut-over generation ${generation} (at ${g ?? 'unknown'}) after ${WAIT_MS} ms`);
      await sleep(50);
    }
  }
  return `${ce.edgeUrls.length} edge(s) at generation ≥ ${generation}`;
}

function run(bin: string, args: string[], timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(bin, args, { timeout: timeoutMs, killSignal: 'SIGKILL' }, (err, _stdout, stderr) => {
      if (err) reject(new Error(`${bin} ${args.join(' ')}: ${stderr.trim() || err.message}`));
      else resolve();
    });
  });
}

/** Child pids of the nginx master (its workers), from /proc; empty when not visible from here. */
async function nginxWorkers(master: number): Promise<number[]> {
  const out: number[] = [];
  let names: string[];
  try {
    names = await readdir('/proc');
  } catch {
    return out;
  }
  for (const n of names) {
    if (!/^\d+$/.test(n)) continue;
    const stat = await readFile(`/proc/${n}/stat`, 'utf8').catch(() => '');
    // Fields after the parenthesised comm: state, ppid, ...
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid === master) out.push(Number(n));
  }
  return out;
}

async function stillAccepting(pid: number): Promise<boolean> {
  const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => undefined);
  // Gone, or retitled "worker process is shutting down" — set as it closes its listening sockets.
  return cmd !== undefined && cmd.includes('worker process') && !cmd.includes('shutting down');
}

/**
 * `nginx -s reload` only signals the master. Done means: the new config answers (its generation
 * is served over a fresh connection) and every worker of the old config has stopped accepting.
 */
async function reloadNginx(ce: CutoverEnv, generation: number): Promise<string> {
  const n = ce.nginx;
  if (!n) return 'no nginx configured (NGINX_CONF unset): map rendered only';
  const master = Number((await readFile(n.pidFile, 'utf8').catch(() => '')).trim());
  const old = Number.isInteger(master) && master > 0 ? await nginxWorkers(master) : [];
  await run(n.bin, ['-p', n.prefix, '-c', n.conf, '-e', n.errorLog, '-s', 'reload'], 10_000);
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const g = n.url ? await nginxGeneration(n.url).catch(() => undefined) : generation;
    const accepting = (await Promise.all(old.map(stillAccepting))).filter(Boolean).length;
    if (g !== undefined && g >= generation && accepting === 0) break;
    if (Date.now() > deadline) {
      const tail = (await readFile(n.errorLog, 'utf8').catch(() => '')).split('\n').filter((l) => /\[(emerg|alert|crit|error)\]/.test(l)).slice(-3).join('\n');
      throw new Error(`nginx did not take generation ${generation} within ${WAIT_MS} ms (serving ${g ?? 'unknown'}, ${accepting} old worker(s) accepting); it keeps its old config.${tail ? `\n${tail}` : ''}\nThe edges already enforce the new set; fix nginx and run \`ingestctl cutover sync\`.`);
    }
    await sleep(25);
  }
  return `nginx reloaded; generation ${generation} live${old.length ? `, ${old.length} old worker(s) retired` : ''}`;
}

const STATE_FOR: Record<string, TenantRoute> = { add: 'v2', mirror: 'mirror', remove: 'legacy' };

// ---------------------------------------------------------------------------------------------
// Parity: entries per type and hour, legacy vs v2.

export interface ParityRow {
  hour: string;
  type: string;
  legacy: number | null;
  v2: number;
}

/** What a legacy pipeline's LEGACY_COUNT_URL answers (see runbooks/cutover.md). */
export interface LegacyCounts {
  buckets: Array<{ hour: string; type: string; count: number }>;
}

type CountFn = (q: { tenant: string; type: string; sinceMs: number; table: TableName }) => Promise<number>;

const HOUR = 3_600_000;

/**
 * Per-hour counts from "count since" alone (what both v2 read paths offer): the entries of hour h
 * are count(since h) − count(since h+1). Types with no entries in the window cost one query.
 */
export async function v2Buckets(count: CountFn, tenant: string, table: TableName, startMs: number, hours: number, types: readonly string[] = ENTRY_TYPES): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const type of types) {
    const first = await count({ tenant, type, sinceMs: startMs, table });
    if (first === 0) continue;
    const cum: number[] = [first];
    // Boundaries in small parallel groups: bounded load on the store.
    const bounds = Array.from({ length: hours }, (_, i) => startMs + (i + 1) * HOUR);
    for (let i = 0; i < bounds.length; i += 8) {
      const got = await Promise.all(bounds.slice(i, i + 8).map((b) => count({ tenant, type, sinceMs: b, table })));
      cum.push(...got);
    }
    for (let h = 0; h < hours; h++) {
      const n = (cum[h] ?? 0) - (cum[h + 1] ?? 0);
      if (n !== 0) out.set(`${new Date(startMs + h * HOUR).toISOString()}|${type}`, n);
    }
  }
  return out;
}

export function parityRows(legacy: LegacyCounts | undefined, v2: Map<string, number>): ParityRow[] {
  const keys = new Set(v2.keys());
  const leg = new Map<string, number>();
  for (const b of legacy?.buckets ?? []) {
    const k = `${new Date(b.hour).toISOString()}|${b.type}`;
    leg.set(k, (leg.get(k) ?? 0) + b.count);
    keys.add(k);
  }
  return [...keys].sort().map((k) => {
    const [hour = '', type = ''] = k.split('|');
    return { hour, type, legacy: legacy ? (leg.get(k) ?? 0) : null, v2: v2.get(k) ?? 0 };
  });
}

async function v2CountFn(io: Io): Promise<{ count: CountFn; close: () => Promise<void> }> {
  const chUrl = io.env['CLICKHOUSE_URL'];
  if (chUrl) {
    const store = await TelemetryStore.open({ url: chUrl, database: io.env['CLICKHOUSE_DATABASE'] ?? 'default' });
    return { count: (q) => store.count(q), close: () => store.close() };
  }
  const sink = io.env['SINK_URL'] ?? `http://127.0.0.1:${io.env['SINK_PORT'] ?? '8082'}`;
  return {
    count: async (q) => {
      const u = new URL('/admin/v1/count', sink);
      u.searchParams.set('tenant', q.tenant);
      u.searchParams.set('type', q.type);
      u.searchParams.set('since', String(q.sinceMs));
      u.searchParams.set('table', q.table);
      let res: Response;
      try {
        res = await fetch(u, { headers: adminHeaders(io.env), signal: AbortSignal.timeout(30_000) });
      } catch (e) {
        throw new UnreachableError('the sink writer', sink, e);
      }
      const body = (await res.json()) as { count?: number; error?: { message: string } };
      if (!res.ok || body.count === undefined) throw new Error(`sink writer count failed: ${body.error?.message ?? res.status}`);
      return body.count;
    },
    close: async () => undefined,
  };
}

async function legacyCounts(url: string, tenant: string, sinceMs: number, untilMs: number): Promise<LegacyCounts> {
  const u = new URL(url);
  u.searchParams.set('tenant', tenant);
  u.searchParams.set('since', String(sinceMs));
  u.searchParams.set('until', String(untilMs));
  let res: Response;
  try {
    res = await fetch(u, { signal: AbortSignal.timeout(30_000) });
  } catch (e) {
    throw new UnreachableError('LEGACY_COUNT_URL', url, e);
  }
  if (!res.ok) throw new Error(`LEGACY_COUNT_URL answered ${res.status}`);
  const body = (await res.json()) as Partial<LegacyCounts>;
  if (!Array.isArray(body.buckets)) throw new Error('LEGACY_COUNT_URL answered without a "buckets" array');
  return { buckets: body.buckets.filter((b) => typeof b.hour === 'string' && typeof b.type === 'string' && Number.isFinite(b.count)) };
}

async function tenantStatus(io: Io, ce: CutoverEnv, tenant: string, hours: number, json: boolean, tableOpt: string | undefined): Promise<ExitCode> {
  const [doc, tenants] = await Promise.all([readCutover(ce.files.cutoverFile), readTenants(ce.files.tenantsFile)]);
  const route = routeOf(doc, tenant);
  // What v2 holds for this tenant is authoritative (live) only once cut over; before, the mirror copy.
  const tableName: TableName = tableOpt === 'live' ? TABLES.live : tableOpt === 'mirror' ? TABLES.mirror : route === 'v2' ? TABLES.live : TABLES.mirror;
  const now = Date.now();
  const startMs = Math.floor(now / HOUR) * HOUR - (hours - 1) * HOUR;
  const legacyUrl = io.env['LEGACY_COUNT_URL'];
  const src = await v2CountFn(io);
  let v2: Map<string, number>;
  try {
    v2 = await v2Buckets(src.count, tenant, tableName, startMs, hours);
  } finally {
    await src.close();
  }
  const legacy = legacyUrl ? await legacyCounts(legacyUrl, tenant, startMs, startMs + hours * HOUR) : undefined;
  const rows = parityRows(legacy, v2);
  const mismatched = rows.filter((r) => r.legacy !== null && r.legacy !== r.v2);
  const totals = { legacy: legacy ? rows.reduce((a, r) => a + (r.legacy ?? 0), 0) : null, v2: rows.reduce((a, r) => a + r.v2, 0) };
  const prefixes = (tenants.tenants[tenant]?.keys ?? []).filter((k) => k.revokedAt === null).map((k) => k.prefix);
  const parity = { checked: legacy !== undefined, ...(legacy ? {} : { reason: 'LEGACY_COUNT_URL is not set' }), match: legacy ? mismatched.length === 0 : null, mismatchedBuckets: mismatched.length, totals };
  // Only a parity that was compared and matched is a green light for `cutover add`.
  const code = parity.match === true ? EXIT.OK : EXIT.CHECK_FAILED;
  if (json) {
    io.out(JSON.stringify({ tenant, route, since: doc.tenants[tenant]?.since ?? null, generation: doc.generation, keyPrefixes: prefixes, v2Table: tableName, window: { since: new Date(startMs).toISOString(), hours }, rows, parity }));
    return code;
  }
  io.out(`tenant ${tenant}: ${route}${doc.tenants[tenant] ? ` since ${doc.tenants[tenant]?.since}` : ''} (set generation ${doc.generation}; keys ${prefixes.join(', ') || 'none'})`);
  io.out(`parity over the last ${hours} h by entry time, legacy vs v2 ${tableName}:`);
  io.out(table(rows.map((r) => ({ hour: r.hour.slice(0, 13) + 'h', type: r.type, legacy: r.legacy ?? '-', v2: r.v2, diff: r.legacy === null ? '-' : r.v2 - r.legacy }))));
  if (!legacy) io.out('parity: not checked — LEGACY_COUNT_URL is not set, so only v2 is shown');
  else io.out(parity.match ? `parity: OK — ${totals.legacy} legacy, ${totals.v2} v2` : `parity: MISMATCH in ${mismatched.length} bucket(s) — ${totals.legacy} legacy, ${totals.v2} v2`);
  return code;
}

type Checked<T> = ({ checked: true } & T) | { checked: false; reason: string };

interface EdgeStatus {
  url: string;
  reachable: boolean;
  generation: number | null;
  enforcing: boolean | null;
  legacy: EdgeView['legacy'] | null;
  problems: string[];
}

/** What `cutover status` compared, what it could not, and the verdict; pure, for the unit tests. */
export function compareSet(
  doc: CutoverDoc,
  nginx: Checked<{ url: string; generation: number | null }>,
  edgeViews: EdgeView[] | undefined,
): {
  nginx: Checked<{ url: string; generation: number | null; problems: string[] }>;
  edges: Checked<{ list: EdgeStatus[] }>;
  sync: Checked<{ ok: boolean; problems: string[] }>;
  unreachable: boolean;
} {
  const gen = doc.generation;
  const problems: string[] = [];
  let unreachable = false;
  const ng = nginx.checked ? { ...nginx, problems: [] as string[] } : nginx;
  if (ng.checked) {
    if (ng.generation === null) {
      unreachable = true;
      ng.problems.push(`nginx ${ng.url} did not answer /_cutover/generation`);
    } else if (ng.generation !== gen) ng.problems.push(`nginx ${ng.url} runs generation ${ng.generation}, the set is at ${gen}`);
    problems.push(...ng.problems);
  }
  let edges: Checked<{ list: EdgeStatus[] }>;
  if (edgeViews === undefined || edgeViews.length === 0) {
    edges = { checked: false, reason: 'CUTOVER_EDGE_URLS is not set: no edge was asked which set it runs' };
  } else {
    const list = edgeViews.map((v): EdgeStatus => {
      const p: string[] = [];
      if (v.error !== undefined) {
        unreachable = true;
        p.push(`edge ${v.url} ${v.error}`);
      } else {
        if (v.generation !== gen) p.push(`edge ${v.url} runs generation ${v.generation ?? 'unknown'}, the set is at ${gen}`);
        const l = v.legacy;
        // Enforcing without a usable legacy: every tenant not cut over that reaches this edge gets 503.
        if (v.enforcing === true && l && !(l.configured && l.reachable === true)) {
          p.push(`edge ${v.url} enforces the set but ${l.configured ? `cannot reach legacy (${l.error ?? 'no answer'})` : 'has no LEGACY_URL'}: tenants not cut over get 503 there`);
        }
      }
      return { url: v.url, reachable: v.error === undefined, generation: v.generation ?? null, enforcing: v.enforcing ?? null, legacy: v.legacy ?? null, problems: p };
    });
    for (const e of list) problems.push(...e.problems);
    edges = { checked: true, list };
  }
  // The edges are what enforces the set: without them nothing about "in sync" is known.
  const sync: Checked<{ ok: boolean; problems: string[] }> = edges.checked ? { checked: true, ok: problems.length === 0, problems } : { checked: false, reason: edges.reason };
  return { nginx: ng, edges, sync, unreachable };
}

async function overallStatus(io: Io, ce: CutoverEnv, json: boolean): Promise<ExitCode> {
  const doc = await readCutover(ce.files.cutoverFile);
  const nginxUrl = ce.nginx?.url;
  const nginxIn: Checked<{ url: string; generation: number | null }> = nginxUrl
    ? { checked: true, url: nginxUrl, generation: (await nginxGeneration(nginxUrl).catch(() => undefined)) ?? null }
    : { checked: false, reason: ce.nginx ? 'NGINX_URL is not set' : 'no nginx configured (NGINX_CONF, NGINX_URL unset)' };
  const views = ce.edgeUrls.length > 0 ? await Promise.all(ce.edgeUrls.map(edgeView)) : undefined;
  const r = compareSet(doc, nginxIn, views);
  const counts = { v2: 0, mirror: 0 };
  for (const e of Object.values(doc.tenants)) counts[e.state]++;
  const migration = cutoverActive(doc);
  const code = r.unreachable ? EXIT.UNREACHABLE : r.sync.checked && r.sync.ok ? EXIT.OK : EXIT.CHECK_FAILED;
  if (json) {
    io.out(JSON.stringify({ file: ce.files.cutoverFile, generation: doc.generation, tenants: counts, migration, nginx: r.nginx, edges: r.edges, sync: r.sync, inSync: r.sync.checked ? r.sync.ok : null }));
    return code;
  }
  io.out(
    `cut-over set ${ce.files.cutoverFile}: generation ${doc.generation}; ` +
      (migration ? `${counts.v2} tenant(s) on v2, ${counts.mirror} mirrored, everyone else on legacy` : 'empty: no migration (an edge without LEGACY_URL takes every tenant; with it, every tenant goes to legacy)'),
  );
  io.out('compared with:');
  if (r.nginx.checked) io.out(`  nginx ${r.nginx.url}: ${r.nginx.generation === null ? 'unreachable' : `generation ${r.nginx.generation}${r.nginx.generation === doc.generation ? '' : ' (DIFFERS)'}`}`);
  else io.out(`  nginx: not checked — ${r.nginx.reason}`);
  if (r.edges.checked) {
    for (const e of r.edges.list) {
      if (!e.reachable) {
        io.out(`  edge ${e.url}: unreachable`);
        continue;
      }
      const l = e.legacy;
      const legacy = !l ? 'legacy: not reported' : !l.configured ? 'no LEGACY_URL' : l.reachable ? 'legacy reachable' : `legacy NOT reachable (${l.error ?? 'no answer'})`;
      io.out(`  edge ${e.url}: generation ${e.generation ?? 'unknown'}${e.generation === doc.generation ? '' : ' (DIFFERS)'}; ${e.enforcing === null ? 'enforcing: not reported' : e.enforcing ? 'enforcing the set' : 'not enforcing (takes every tenant)'}; ${legacy}`);
    }
  } else io.out(`  edges: not checked — ${r.edges.reason}`);
  if (!r.sync.checked) io.out(`NOT CHECKED: ${r.sync.reason}. Set CUTOVER_EDGE_URLS (and NGINX_URL) to compare.`);
  else if (r.sync.ok) io.out(`in sync: ${r.edges.checked ? r.edges.list.length : 0} edge(s)${r.nginx.checked ? ' and nginx' : ''} run generation ${doc.generation}${r.nginx.checked ? '' : ' (nginx not checked)'}`);
  else io.out(`NOT in sync:\n${r.sync.problems.map((p) => `  ${p}`).join('\n')}\nrun \`ingestctl cutover sync\`, then check again`);
  return code;
}

/** One edge's GET /status, reduced to what the plan and the status need; never throws. */
export async function edgeView(url: string): Promise<EdgeView> {
  try {
    const r = await getFresh(new URL('/status', url), 5000);
    if (r.status !== 200) return { url, error: `GET /status answered HTTP ${r.status}` };
    const c = (JSON.parse(r.body) as { cutover?: { generation?: number; enforcing?: boolean; legacy?: EdgeView['legacy'] } }).cutover;
    return {
      url,
      ...(c?.generation !== undefined ? { generation: c.generation } : {}),
      ...(c?.enforcing !== undefined ? { enforcing: c.enforcing } : {}),
      ...(c?.legacy ? { legacy: c.legacy } : {}),
    };
  } catch (e) {
    return { url, error: `did not answer GET /status (${whyUnreachable(e, 5000)})` };
  }
}

interface ChangeOptions {
  dryRun: boolean;
  force: boolean;
  json: boolean;
}

/**
 * add / mirror / remove: plan, check every edge's view, then (unless a dry run, or the check
 * failed without --force) write, render, wait for the edges and reload the LB.
 */
async function change(io: Io, ce: CutoverEnv, tenant: string, route: TenantRoute, o: ChangeOptions): Promise<ExitCode> {
  const [doc, tenants] = await Promise.all([readCutover(ce.files.cutoverFile), readTenants(ce.files.tenantsFile)]);
  if (route !== 'legacy' && !tenants.tenants[tenant]) {
    // A typo must not route nothing and look done.
    io.err(`refused: no tenant "${tenant}" in ${ce.files.tenantsFile}`);
    return EXIT.CHECK_FAILED;
  }
  const previous = routeOf(doc, tenant);
  const after = withRoute(doc, tenant, route);
  const views = await Promise.all(ce.edgeUrls.map(edgeView));
  const check = checkEdges(doc, after, Object.keys(tenants.tenants), views);
  const keys = (tenants.tenants[tenant]?.keys ?? []).filter((k) => k.revokedAt === null).map((k) => k.prefix);
  const plan = {
    tenant,
    from: previous,
    to: route,
    keyPrefixes: keys,
    writes: previous === route ? [] : [ce.files.cutoverFile],
    renders: [path.join(ce.nginxDir, 'cutover-map.conf'), ...(ce.envoyRds ? [ce.envoyRds] : [])],
    reloads: ce.nginx ? `${ce.nginx.bin} -p ${ce.nginx.prefix} -c ${ce.nginx.conf} -s reload` : null,
    check,
  };
  // An edge that did not answer is "unreachable"; anything else the check found is a refusal.
  const refusal = check.ok ? undefined : views.some((v) => v.error !== undefined) ? EXIT.UNREACHABLE : EXIT.CHECK_FAILED;
  const planText = () =>
    [
      `  tenant ${tenant}: ${previous} → ${route}`,
      `  key prefixes routed: ${keys.join(', ') || 'none'}`,
      `  writes ${plan.writes.join(', ') || 'nothing (already so)'}`,
      `  renders ${plan.renders.join(', ')}`,
      `  reloads ${plan.reloads ?? 'nothing (NGINX_CONF unset)'}`,
      ...formatEdgeCheck(check).map((l) => `  ${l}`),
    ].join('\n');
  if (o.dryRun) {
    if (o.json) io.out(JSON.stringify({ plan, dryRun: true, wouldApply: refusal === undefined || o.force }));
    else io.out(`plan (dry run, nothing written):\n${planText()}${refusal !== undefined ? `\n${o.force ? 'with --force this change would be applied anyway' : 'the change would be REFUSED (--force to apply it anyway)'}` : ''}`);
    return refusal !== undefined && !o.force ? refusal : EXIT.OK;
  }
  if (refusal !== undefined && !o.force) {
    if (o.json) io.out(JSON.stringify({ tenant, refused: true, plan }));
    else io.out(`REFUSED, nothing written:\n${planText()}`);
    io.err(`cutover ${STATE_FOR_NAME[route]} ${tenant} refused: ${check.reason ?? 'check failed'}. Fix the edges (LEGACY_URL, reachability, CUTOVER_EDGE_URLS), or pass --force if you accept it.`);
    return refusal;
  }
  let rendered = { entries: 0, caseCollisions: [] as string[] };
  let applied: CutoverChange;
  try {
    applied = await setTenantRoute(
      ce.files,
      tenant,
      route,
      async (d, t) => {
        rendered = await renderRouting(ce, d, t);
      },
      { expectGeneration: doc.generation },
    );
  } catch (e) {
    if (!(e instanceof CutoverConflictError)) throw e;
    io.err(e.message);
    return EXIT.CHECK_FAILED;
  }
  const gen = applied.doc.generation;
  const edgeNote = applied.changed ? await waitEdges(ce, gen) : 'edges unchanged';
  const nginxNote = await reloadNginx(ce, gen);
  if (o.json) {
    io.out(JSON.stringify({ tenant, previous: applied.previous, current: applied.current, changed: applied.changed, generation: gen, routes: rendered.entries, caseCollisions: rendered.caseCollisions, edges: edgeNote, nginx: nginxNote, check, forced: refusal !== undefined }));
  } else {
    io.out(applied.changed ? `tenant ${tenant}: ${applied.previous} → ${applied.current} (generation ${gen})` : `tenant ${tenant} already ${applied.current} (generation ${gen}); routing re-rendered`);
    if (refusal !== undefined) io.out(`  FORCED past a failed check:\n${formatEdgeCheck(check).map((l) => `    ${l}`).join('\n')}`);
    io.out(`  ${edgeNote}\n  ${nginxNote}`);
    if (rendered.caseCollisions.length) io.out(`  note: ${rendered.caseCollisions.join(', ')} differ from another key only by case; rendered as case-sensitive regexes`);
    if (applied.current !== 'legacy') io.out(`  next: ingestctl cutover status ${tenant}`);
  }
  return EXIT.OK;
}

const STATE_FOR_NAME: Record<TenantRoute, string> = { v2: 'add', mirror: 'mirror', legacy: 'remove' };

export const cutover: Command = {
  name: 'cutover',
  summary: 'move tenants from legacy to v2 one at a time; mirror, parity, rollback',
  help: HELP,
  async run(argv, io) {
    const { values, positionals } = parse(argv, { 'dry-run': { type: 'boolean' }, force: { type: 'boolean' }, hours: { type: 'string' }, table: { type: 'string' } });
    if (values.help) {
      io.out(HELP);
      return EXIT.OK;
    }
    const [sub, tenant, ...extra] = positionals;
    if (extra.length > 0) throw new UsageError(`unexpected ${extra.join(' ')}`);
    const ce = cutoverEnv(io.env);
    const json = values.json === true;
    switch (sub) {
      case 'list': {
        const [doc, tenants] = await Promise.all([readCutover(ce.files.cutoverFile), readTenants(ce.files.tenantsFile)]);
        const rows = Object.entries(doc.tenants).map(([id, e]) => ({
          tenant: id,
          state: e.state,
          since: e.since,
          prefixes: (tenants.tenants[id]?.keys ?? []).filter((k) => k.revokedAt === null).map((k) => k.prefix).join(','),
        }));
        io.out(json ? JSON.stringify({ generation: doc.generation, tenants: rows }) : `${table(rows)}\n(generation ${doc.generation}; tenants not listed are on legacy)`);
        return EXIT.OK;
      }
      case 'add':
      case 'mirror':
      case 'remove': {
        if (!tenant) throw new UsageError(`cutover ${sub} needs a tenant id`);
        return change(io, ce, tenant, STATE_FOR[sub] as TenantRoute, { dryRun: values['dry-run'] === true, force: values.force === true, json });
      }
      case 'status': {
        const hours = values.hours === undefined ? 24 : Number(values.hours);
        if (!Number.isInteger(hours) || hours < 1 || hours > 168) throw new UsageError('--hours must be 1..168');
        if (values.table !== undefined && values.table !== 'live' && values.table !== 'mirror') throw new UsageError('--table must be live or mirror');
        return tenant ? tenantStatus(io, ce, tenant, hours, json, values.table) : overallStatus(io, ce, json);
      }
      case 'sync': {
        if (tenant) throw new UsageError('cutover sync takes no tenant');
        const { gen, rendered } = await withCutoverSnapshot(ce.files, async (doc, tenants) => ({ gen: doc.generation, rendered: await renderRouting(ce, doc, tenants) }));
        const nginxNote = await reloadNginx(ce, gen);
        io.out(json ? JSON.stringify({ generation: gen, routes: rendered.entries, nginx: nginxNote }) : `rendered ${rendered.entries} key route(s) for generation ${gen}\n  ${nginxNote}`);
        return EXIT.OK;
      }
      default:
        throw new UsageError(sub ? `unknown cutover command "${sub}"` : 'cutover needs a command');
    }
  },
};
