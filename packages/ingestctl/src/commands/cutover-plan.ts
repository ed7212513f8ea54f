import { cutoverActive, routeOf, type CutoverDoc } from '@ingest/tenants';

/** What an edge told us about itself on GET /status (its `cutover` block). */
export interface EdgeView {
  url: string;
  /** Set when the edge did not answer, or answered without what the check needs. */
  error?: string;
  generation?: number;
  enforcing?: boolean;
  legacy?: { configured: boolean; url: string | null; reachable: boolean | null; error?: string };
}

/** What an edge does with a request of one tenant (that is not a mirror copy). */
export type Treatment = 'live' | 'legacy' | 'shed';

export const TREATMENT_TEXT: Record<Treatment, string> = {
  live: 'taken by v2 (live)',
  legacy: 'forwarded to legacy',
  shed: 'refused: 503 INGEST_ERR_DEPENDENCY_UNAVAILABLE',
};

type LegacyView = NonNullable<EdgeView['legacy']>;

/** The edge's rule (services/edge/src/cutover/gate.ts), applied to a set the edge may not run yet. */
export function treatment(doc: CutoverDoc, tenant: string, legacy: LegacyView): Treatment {
  const enforcing = legacy.configured || cutoverActive(doc);
  if (!enforcing || routeOf(doc, tenant) === 'v2') return 'live';
  return legacy.configured && legacy.reachable === true ? 'legacy' : 'shed';
}

export interface EdgeMove {
  from: Treatment;
  to: Treatment;
  tenants: string[];
}

export type EdgeImpact =
  | { url: string; checked: false; reason: string }
  | {
      url: string;
      checked: true;
      legacy: LegacyView;
      enforcing: { before: boolean; after: boolean };
      /** Tenants whose treatment changes, grouped by (from, to). */
      moves: EdgeMove[];
      /** Tenants the change would have this edge refuse with 503 that it serves now. */
      newlyShed: string[];
      /** Tenants this edge refuses already, and still would. */
      stillShed: string[];
    };

export interface EdgeCheck {
  /** False when at least one edge could not be asked: then nothing is known about it. */
  checked: boolean;
  /** True only when every edge was asked and none would newly refuse a tenant. */
  ok: boolean;
  reason?: string;
  edges: EdgeImpact[];
}

/**
 * What the change from `before` to `after` does at each edge, from the edge's own view of legacy
 * (an edge without LEGACY_URL, or one that cannot reach it, refuses every tenant it would forward).
 * A change is safe when no tenant goes from served to refused at any edge; tenants already refused
 * are reported but do not block a change that does not make things worse (e.g. a rollback).
 */
export function checkEdges(before: CutoverDoc, after: CutoverDoc, tenants: readonly string[], views: readonly EdgeView[]): EdgeCheck {
  if (views.length === 0) {
    return { checked: false, ok: false, reason: 'CUTOVER_EDGE_URLS is not set: no edge was asked whether it can reach legacy', edges: [] };
  }
  const edges: EdgeImpact[] = views.map((v) => {
    if (v.error !== undefined || v.legacy === undefined) return { url: v.url, checked: false, reason: v.error ?? 'the edge does not report its legacy pipeline (an older edge?)' };
    const legacy = v.legacy;
    const groups = new Map<string, EdgeMove>();
    const newlyShed: string[] = [];
    const stillShed: string[] = [];
    for (const t of [...tenants].sort()) {
      const from = treatment(before, t, legacy);
      const to = treatment(after, t, legacy);
      if (to === 'shed') (from === 'shed' ? stillShed : newlyShed).push(t);
      if (from === to) continue;
      const k = `${from}>${to}`;
      const g = groups.get(k) ?? { from, to, tenants: [] };
      g.tenants.push(t);
      groups.set(k, g);
    }
    return {
      url: v.url,
      checked: true,
      legacy,
      enforcing: { before: legacy.configured || cutoverActive(before), after: legacy.configured || cutoverActive(after) },
      moves: [...groups.values()],
      newlyShed,
      stillShed,
    };
  });
  const unchecked = edges.filter((e) => !e.checked);
  if (unchecked.length > 0) return { checked: false, ok: false, reason: `${unchecked.length} of ${edges.length} edge(s) could not be asked`, edges };
  const shedding = edges.filter((e) => e.checked && e.newlyShed.length > 0);
  if (shedding.length > 0) {
    const n = new Set(shedding.flatMap((e) => (e.checked ? e.newlyShed : []))).size;
    return { checked: true, ok: false, reason: `${n} tenant(s) would be refused with 503 by ${shedding.length} edge(s) that cannot forward to legacy`, edges };
  }
  return { checked: true, ok: true, edges };
}

const MAX_NAMES = 12;
function names(ts: string[]): string {
  return ts.length <= MAX_NAMES ? ts.join(', ') : `${ts.slice(0, MAX_NAMES).join(', ')} … and ${ts.length - MAX_NAMES} more (--json lists all)`;
}

function legacyText(l: LegacyView): string {
  if (!l.configured) return 'LEGACY_URL not set';
  return l.reachable ? `legacy ${l.url ?? ''} reachable` : `legacy ${l.url ?? ''} NOT reachable (${l.error ?? 'no answer'})`;
}

/** The check as plan lines (indented by the caller). */
export function formatEdgeCheck(c: EdgeCheck): string[] {
  const lines: string[] = ['edges (each from its own view of legacy):'];
  if (c.edges.length === 0) lines.push('  not checked: CUTOVER_EDGE_URLS is not set (the edges\' admin URLs, e.g. http://127.0.0.1:9080 for pnpm start)');
  for (const e of c.edges) {
    if (!e.checked) {
      lines.push(`  ${e.url}: not checked — ${e.reason}`);
      continue;
    }
    const enf = e.enforcing.before === e.enforcing.after ? (e.enforcing.after ? 'enforcing' : 'not enforcing (takes every tenant)') : e.enforcing.after ? 'starts enforcing the set' : 'stops enforcing (takes every tenant again)';
    lines.push(`  ${e.url}: ${legacyText(e.legacy)}; ${enf}`);
    for (const m of e.moves) lines.push(`    ${m.tenants.length} tenant(s) ${TREATMENT_TEXT[m.from]} → ${TREATMENT_TEXT[m.to]}: ${names(m.tenants)}`);
    if (e.stillShed.length > 0) lines.push(`    ${e.stillShed.length} tenant(s) already refused (503) here, and still would be: ${names(e.stillShed)}`);
    if (e.moves.length === 0 && e.stillShed.length === 0) lines.push('    no tenant is treated differently');
  }
  lines.push(c.ok ? 'check: OK — no tenant would be refused by an edge' : `check: ${c.checked ? 'FAILED' : 'NOT CHECKED'} — ${c.reason ?? ''}`);
  return lines;
}

/** The set as it would be after routing `tenant` to `route` (the file itself is not touched). */
export function withRoute(doc: CutoverDoc, tenant: string, route: 'v2' | 'mirror' | 'legacy'): CutoverDoc {
  const tenants = Object.assign(Object.create(null) as CutoverDoc['tenants'], doc.tenants);
  if (route === 'legacy') delete tenants[tenant];
  else if (tenants[tenant]?.state !== route) tenants[tenant] = { state: route, since: new Date().toISOString() };
  return { ...doc, tenants };
}
