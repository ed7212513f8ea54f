import type { ClickHouseClient } from '@clickhouse/client';
import { ENTRY_TYPES, ingestError, type EntryType, type IngestError, type QueryPage, type StoredEntry } from '@ingest/contracts';
import { clearFailedStatement } from './ops.ts';
import { TABLES } from './store.ts';

/** `limit` when none is given, and the most one page may hold. */
export const QUERY_DEFAULT_LIMIT = 100;
export const QUERY_MAX_LIMIT = 10_000;
/** Label filters one query may carry, and the longest value of any filter: a query, not a payload. */
const MAX_LABEL_FILTERS = 32;
const MAX_VALUE_CHARS = 1024;

/** Parameters GET /v2/query takes besides `label.<key>`; the message of an unknown one lists them. */
export const QUERY_PARAMS = ['type', 'app', 'from', 'to', 'level', 'q', 'name', 'id', 'limit', 'cursor', 'order', 'rollup'] as const;
/** Rollup resolutions: minutes as stored, hours summed from them. */
export const ROLLUPS = ['1m', '1h'] as const;
export type Rollup = (typeof ROLLUPS)[number];
/** Entry filters a rollup has no column for. */
const NOT_IN_ROLLUPS = ['q', 'id', 'cursor'] as const;
/**
 * Parameters a client may send that name a tenant. They are ignored, not refused: the tenant is
 * the API key's, whatever the query string says.
 */
const IGNORED_PARAMS = new Set(['tenant', 'tenant_id']);

export interface EntryQuery {
  tenant: string;
  type?: EntryType;
  app?: string;
  /** [fromMs, toMs) on the event time. */
  fromMs?: number;
  toMs?: number;
  labels: Array<[string, string]>;
  level?: string;
  /** Substring of the message (case-sensitive, literal: no pattern characters). */
  q?: string;
  name?: string;
  id?: string;
  limit: number;
  order: 'desc' | 'asc';
  /** Keyset position: the page starts strictly after this (ts, id, type) in `order`. */
  after?: CursorKey;
  /** Buckets from the rollup tables instead of entries; `limit` then bounds the buckets (all or a 422). */
  rollup?: Rollup;
}

export interface CursorKey {
  tsMs: number;
  id: string;
  type: string;
}

export interface QueryBounds {
  maxExecutionSeconds: number;
  maxRowsRead: number;
  maxMemoryBytes: number;
}

const bad = (param: string, why: string): IngestError => ingestError('INGEST_ERR_INVALID_PARAMETER', [param, why]);

const DURATION_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** RFC 3339 with a zone, epoch milliseconds, `now`, or relative to now (`-15m`, `-2h`, `-7d`) → epoch ms. */
export function parseQueryTime(raw: string, now: number, param: string): number {
  const t = raw.trim();
  if (t === 'now') return now;
  const rel = /^-(\d{1,9})(s|m|h|d)$/.exec(t);
  if (rel) return now - Number(rel[1]) * DURATION_MS[rel[2] as keyof typeof DURATION_MS];
  if (/^\d{1,15}$/.test(t)) return Number(t);
  // A zone is required: a zone-less time means different instants on different machines.
  if (/^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})$/.test(t)) {
    const ms = Date.parse(t.replace(' ', 'T'));
    if (Number.isFinite(ms)) return ms;
  }
  throw bad(param, `"${raw.slice(0, 64)}" is not a time: use RFC 3339 with a zone (2026-11-20T10:00:00Z), epoch milliseconds, now, or relative like -15m, -2h, -7d`);
}

/** The opaque cursor: the last entry's sort key, base64url JSON. Holds no tenant: the key's tenant always applies. */
export function encodeCursor(k: CursorKey): string {
  return Buffer.from(JSON.stringify([k.tsMs, k.id, k.type])).toString('base64url');
}

export function decodeCursor(raw: string): CursorKey {
  try {
    const v = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(v) && v.length === 3 && Number.isSafeInteger(v[0]) && typeof v[1] === 'string' && typeof v[2] === 'string') return { tsMs: v[0] as number, id: v[1], type: v[2] };
  } catch {
    // falls through to the error below
  }
  throw bad('cursor', 'not a cursor this service issued; pass the "next" value of the previous page unchanged');
}

/**
 * GET /v2/query's query string → an EntryQuery for `tenant` (taken from the API key by the caller).
 * Every value is checked here and later bound as a parameter; nothing of it is ever SQL text.
 */
export function parseEntryQuery(search: string, tenant: string, now: number): EntryQuery {
  const params = new URLSearchParams(search);
  const q: EntryQuery = { tenant, labels: [], limit: QUERY_DEFAULT_LIMIT, order: 'desc' };
  const seen = new Set<string>();
  for (const [key, value] of params) {
    if (value.length > MAX_VALUE_CHARS) throw bad(key.slice(0, 64), `longer than ${MAX_VALUE_CHARS} characters`);
    if (key.startsWith('label.')) {
      const k = key.slice('label.'.length);
      if (k === '') throw bad(key, 'write label.<key>=<value>');
      if (q.labels.length >= MAX_LABEL_FILTERS) throw bad(key.slice(0, 64), `at most ${MAX_LABEL_FILTERS} label filters`);
      q.labels.push([k, value]);
      continue;
    }
    if (IGNORED_PARAMS.has(key)) continue;
    if (!(QUERY_PARAMS as readonly string[]).includes(key)) throw bad(key.slice(0, 64), `unknown; use ${QUERY_PARAMS.join(', ')} or label.<key>=<value>`);
    if (seen.has(key)) throw bad(key, 'given twice (only label.<key> repeats)');
    seen.add(key);
    switch (key) {
      case 'type':
        if (!(ENTRY_TYPES as readonly string[]).includes(value)) throw bad('type', `"${value.slice(0, 64)}": use one of ${ENTRY_TYPES.join(', ')}`);
        q.type = value as EntryType;
        break;
      case 'from':
        q.fromMs = parseQueryTime(value, now, 'from');
        break;
      case 'to':
        q.toMs = parseQueryTime(value, now, 'to');
        break;
      case 'limit': {
        const n = /^\d{1,6}$/.test(value) ? Number(value) : NaN;
        if (!(n >= 1 && n <= QUERY_MAX_LIMIT)) throw bad('limit', `"${value.slice(0, 64)}": a whole number from 1 to ${QUERY_MAX_LIMIT}`);
        q.limit = n;
        break;
      }
      case 'order':
        if (value !== 'desc' && value !== 'asc') throw bad('order', `"${value.slice(0, 64)}": use desc (newest first, the default) or asc`);
        q.order = value;
        break;
      case 'cursor':
        q.after = decodeCursor(value);
        break;
      case 'rollup':
        if (!(ROLLUPS as readonly string[]).includes(value)) throw bad('rollup', `"${value.slice(0, 64)}": use ${ROLLUPS.join(' or ')}`);
        q.rollup = value as Rollup;
        break;
      case 'app':
      case 'level':
      case 'q':
      case 'name':
      case 'id':
        if (value === '') throw bad(key, 'empty; leave it out to match any');
        q[key] = value;
        break;
    }
  }
  if (q.rollup !== undefined) {
    for (const p of NOT_IN_ROLLUPS) if (seen.has(p)) throw bad(p, `not available with rollup (buckets have no ${p === 'q' ? 'message' : p}); leave it out`);
    // A rollup answers every bucket or none: the limit defaults to the most, not to one page.
    if (!seen.has('limit')) q.limit = QUERY_MAX_LIMIT;
  }
  if (q.fromMs !== undefined && q.toMs !== undefined && q.fromMs >= q.toMs) throw bad('from', `${new Date(q.fromMs).toISOString()} is not before to (${new Date(q.toMs).toISOString()}); the window is [from, to)`);
  return q;
}

interface RawRow {
  id: string;
  type: string;
  ts_ms: string | number;
  received_ms: string | number;
  app: string;
  source: string;
  name: string;
  value: number | null;
  unit: string;
  level: string;
  message: string;
  labels: Record<string, string>;
  data: string;
}

/** ClickHouse's limit errors → the catalog's 4xx that says which bound was hit. */
export function boundError(e: unknown, b: QueryBounds): IngestError | undefined {
  const type = (e as { type?: unknown }).type;
  const code = Number((e as { code?: unknown }).code);
  if (type === 'TIMEOUT_EXCEEDED' || code === 159) return ingestError('INGEST_ERR_QUERY_TIMEOUT', [b.maxExecutionSeconds], { cause: e });
  if (type === 'TOO_MANY_ROWS' || code === 158) return ingestError('INGEST_ERR_QUERY_TOO_MANY_ROWS', [b.maxRowsRead], { cause: e });
  if (type === 'MEMORY_LIMIT_EXCEEDED' || code === 241) return ingestError('INGEST_ERR_QUERY_MEMORY', [b.maxMemoryBytes], { cause: e });
  return undefined;
}

/**
 * WHERE clauses and their bound parameters, built together: a value only ever becomes a parameter,
 * and a clause's text comes from here, never from input.
 */
export class Where {
  readonly clauses: string[];
  constructor(
    readonly params: Record<string, unknown>,
    ...clauses: string[]
  ) {
    this.clauses = clauses;
  }

  /** `column = {column:String}` when the value is given. */
  eq(column: 'type' | 'app' | 'level' | 'name' | 'id', value: string | undefined): this {
    if (value !== undefined) this.add(`${column} = {${column}:String}`, { [column]: value });
    return this;
  }

  add(clause: string, params: Record<string, unknown> = {}): this {
    this.clauses.push(clause);
    Object.assign(this.params, params);
    return this;
  }

  /** Every `label.<k>=<v>` must match (a missing key is not the empty value). */
  labels(labels: ReadonlyArray<readonly [string, string]>): this {
    labels.forEach(([k, v], i) => this.add(`labels[{lk${i}:String}] = {lv${i}:String} AND mapContains(labels, {lk${i}:String})`, { [`lk${i}`]: k, [`lv${i}`]: v }));
    return this;
  }

  sql(): string {
    return this.clauses.join(' AND ');
  }
}

/** A read's SETTINGS clause: its bounds, then readonly=1 (last: it forbids changing settings, including those after it). */
export function boundSettings(bounds: QueryBounds): string {
  return [
    // Seconds, fractions allowed (ClickHouse takes them; the config asks for whole seconds).
    `max_execution_time = ${Number(bounds.maxExecutionSeconds.toFixed(3))}`,
    `timeout_overflow_mode = 'throw'`,
    `max_rows_to_read = ${Math.floor(bounds.maxRowsRead)}`,
    `read_overflow_mode = 'throw'`,
    `max_memory_usage = ${Math.floor(bounds.maxMemoryBytes)}`,
    `readonly = 1`,
  ].join(', ');
}

/**
 * One page of a tenant's live entries, exact (FINAL: an entry loaded twice is returned once),
 * ordered by (ts, id, type) newest first unless `order` is asc, continuing strictly after the
 * cursor's key. Every value is a bound parameter; the only text chosen from input is the sort
 * direction, picked from two constants. The bounds go in the statement's own SETTINGS clause (as
 * runReadOnly's do, so chDB does not keep them for its one session), with readonly=1 last.
 */
export async function queryEntries(client: ClickHouseClient, q: EntryQuery, bounds: QueryBounds): Promise<QueryPage> {
  const w = new Where({ tenant: q.tenant, limit: q.limit + 1 }, 'tenant_id = {tenant:String}');
  w.eq('type', q.type).eq('app', q.app).eq('level', q.level).eq('name', q.name).eq('id', q.id);
  if (q.fromMs !== undefined) w.add('ts >= fromUnixTimestamp64Milli({from:Int64})', { from: q.fromMs });
  if (q.toMs !== undefined) w.add('ts < fromUnixTimestamp64Milli({to:Int64})', { to: q.toMs });
  // position(), not LIKE: the text is literal, a % or _ in it means itself.
  if (q.q !== undefined) w.add('position(message, {q:String}) > 0', { q: q.q });
  w.labels(q.labels);
  const dir = q.order === 'asc' ? 'ASC' : 'DESC';
  if (q.after) {
    w.add(`(ts, id, toString(type)) ${q.order === 'asc' ? '>' : '<'} (fromUnixTimestamp64Milli({cts:Int64}), {cid:String}, {cty:String})`, { cts: q.after.tsMs, cid: q.after.id, cty: q.after.type });
  }
  const settings = boundSettings(bounds);
  // Output aliases never reuse a column's name: WHERE would read the alias (ms) instead of the column.
  const sql =
    `SELECT id, toString(type) AS type, toUnixTimestamp64Milli(ts) AS ts_ms, toUnixTimestamp64Milli(received_at) AS received_ms, toString(app) AS app, toString(source) AS source, ` +
    `name, value, toString(unit) AS unit, toString(level) AS level, message, labels, data ` +
    `FROM ${TABLES.live} FINAL WHERE ${w.sql()} ORDER BY ts ${dir}, id ${dir}, type ${dir} LIMIT {limit:UInt32} ` +
    `SETTINGS ${settings}`;
  let raw: RawRow[];
  try {
    const rs = await client.query({ query: sql, query_params: w.params, format: 'JSONEachRow' });
    raw = await rs.json<RawRow>();
  } catch (e) {
    await clearFailedStatement(client);
    throw boundError(e, bounds) ?? e;
  }
  const more = raw.length > q.limit;
  const rows = more ? raw.slice(0, q.limit) : raw;
  const entries = rows.map(toStoredEntry);
  const last = rows[rows.length - 1];
  return { entries, next: more && last ? encodeCursor({ tsMs: Number(last.ts_ms), id: last.id, type: last.type }) : null };
}

function toStoredEntry(r: RawRow): StoredEntry {
  let data: unknown = r.data;
  try {
    data = JSON.parse(r.data);
  } catch {
    // Stored as text that is not JSON: returned as the text.
  }
  const e: StoredEntry = {
    id: r.id,
    type: r.type,
    timestamp: new Date(Number(r.ts_ms)).toISOString(),
    receivedAt: new Date(Number(r.received_ms)).toISOString(),
    app: r.app,
    source: r.source,
    labels: r.labels,
    data,
  };
  if (r.level !== '') e.level = r.level;
  if (r.message !== '') e.message = r.message;
  if (r.name !== '') e.name = r.name;
  if (r.type === 'metric' || r.value !== null) e.value = r.value;
  if (r.unit !== '') e.unit = r.unit;
  return e;
}
