import type { ClickHouseClient } from '@clickhouse/client';
import { markWindow } from './rollups.ts';
import { TABLES, type TableName } from './store.ts';

/** Bucket widths `ingestctl query --by` offers; the SQL function is picked from this map, never built. */
export const BUCKETS = { hour: 'toStartOfHour', day: 'toStartOfDay' } as const;
export type Bucket = keyof typeof BUCKETS;
export const isBucket = (s: string): s is Bucket => Object.hasOwn(BUCKETS, s);

export interface BucketQuery {
  table?: TableName;
  /** [fromMs, toMs) on the event time (the `ts` column). */
  fromMs: number;
  toMs: number;
  by: Bucket;
  tenant?: string;
  type?: string;
  /** Rows returned at most; one more is asked for so a cut is visible. */
  limit: number;
}

export interface BucketRow {
  /** Start of the UTC hour or day, ISO 8601. */
  bucket: string;
  tenant: string;
  type: string;
  entries: number;
}

/**
 * Distinct entries per (bucket, tenant, type) in an event-time window: how on-call sees which hour
 * of which tenant is missing. FINAL, so an entry loaded twice counts once (exact, not "about").
 */
export async function countBuckets(client: ClickHouseClient, q: BucketQuery): Promise<{ rows: BucketRow[]; truncated: boolean }> {
  const table = q.table ?? TABLES.live;
  if (table !== TABLES.live && table !== TABLES.shadow && table !== TABLES.mirror) throw new Error(`unknown table ${String(table)}`);
  const fn = BUCKETS[q.by];
  const where = ['ts >= fromUnixTimestamp64Milli({from:Int64})', 'ts < fromUnixTimestamp64Milli({to:Int64})'];
  if (q.tenant !== undefined) where.push('tenant_id = {tenant:String}');
  if (q.type !== undefined) where.push('type = {type:String}');
  const rs = await client.query({
    query:
      `SELECT toUnixTimestamp(${fn}(ts, 'UTC')) AS b, tenant_id AS tenant, toString(type) AS type, count() AS n ` +
      `FROM ${table} FINAL WHERE ${where.join(' AND ')} GROUP BY b, tenant, type ORDER BY b, tenant, type LIMIT {limit:UInt32}`,
    query_params: { from: q.fromMs, to: q.toMs, tenant: q.tenant ?? '', type: q.type ?? '', limit: q.limit + 1 },
    format: 'JSONEachRow',
  });
  const raw = await rs.json<{ b: string | number; tenant: string; type: string; n: string | number }>();
  const truncated = raw.length > q.limit;
  const rows = raw.slice(0, q.limit).map((r) => ({ bucket: new Date(Number(r.b) * 1000).toISOString(), tenant: r.tenant, type: r.type, entries: Number(r.n) }));
  return { rows, truncated };
}

/** Limits of one read-only statement; defaults are what `POST /admin/v1/sql` uses. */
export interface ReadOnlyLimits {
  maxRows: number;
  maxBytes: number;
  maxExecutionSeconds: number;
  maxMemoryBytes: number;
}

export const READ_ONLY_DEFAULTS: ReadOnlyLimits = { maxRows: 10_000, maxBytes: 16 * 1024 * 1024, maxExecutionSeconds: 30, maxMemoryBytes: 1024 * 1024 * 1024 };

/**
 * Functions that reach outside the database (files, URLs, other servers, programs). readonly
 * stops writes and DDL, not these, and the embedded engine runs with the service's own file access,
 * so a statement naming one is refused before it runs. Found in the parsed statement (EXPLAIN AST),
 * so comments, quoting or spacing can't hide them.
 */
const OUTSIDE_FUNCTIONS = new Set(
  [
    'file', 'filecluster', 'url', 'urlcluster', 's3', 's3cluster', 'gcs', 'oss', 'cosn', 'azureblobstorage', 'azureblobstoragecluster', 'hdfs', 'hdfscluster',
    'remote', 'remotesecure', 'cluster', 'clusterallreplicas', 'mysql', 'postgresql', 'mongodb', 'redis', 'sqlite', 'jdbc', 'odbc', 'executable', 'executablepool',
    'input', 'deltalake', 'deltalakecluster', 'hudi', 'hudicluster', 'iceberg', 'icebergs3', 'icebergcluster', 'icebergs3cluster', 'icebergazure', 'icebergazurecluster',
    'iceberghdfs', 'iceberglocal', 'arrowflight', 'arrowflightcluster', 'python', 'dictionary', 'ytsaurus',
  ],
);

/** A statement refused before it ran; the message says why (the route maps it to INGEST_ERR_SQL_REFUSED). */
export class SqlRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SqlRefusedError';
  }
}

/** ClickHouse answered "not in readonly mode" (code 164): the statement tried to write or change settings it may not. */
export function isReadonlyRefusal(e: unknown): boolean {
  const err = e as { code?: unknown; type?: unknown; clickhouseCode?: unknown };
  return err.code === '164' || err.clickhouseCode === 164 || err.type === 'READONLY';
}

export interface ReadOnlyResult {
  columns: Array<{ name: string; type: string }>;
  rows: unknown[][];
  /** More rows or bytes than the limits allow were produced; `rows` holds the first maxRows. */
  truncated: boolean;
  elapsedMs: number;
}

/**
 * Call after a read failed. chDB 3.4 hands what a failed statement had already written (its header,
 * early rows) to the next statement on the session as the start of its result; that next statement
 * could be the loader's. This takes that leftover, on a statement whose result is ignored.
 */
export async function clearFailedStatement(client: ClickHouseClient): Promise<void> {
  await client.query({ query: 'SELECT 1', format: 'JSONEachRow' }).then((r) => r.text()).catch(() => undefined);
}

/** First words of a statement that only reads. */
const READ_WORDS = new Set(['SELECT', 'WITH']);

/**
 * Runs one operator statement read-only, on both deployments, while the product runs.
 *
 * Why it is built this way (each point was seen on chDB 3.4):
 * - chDB's connection turns `clickhouse_settings` into session-wide `SET`s, so readonly passed
 *   that way would stay on the sink writer's one session and stop the loader. The limits go in
 *   the statement's own SETTINGS clause instead, which lasts for that statement only.
 * - chDB runs several `;`-separated statements in one call ("SELECT 1; DROP TABLE t" drops t),
 *   so a `;` anywhere is refused before anything is sent.
 * - The statement runs as a subquery of `SELECT * FROM (…) SETTINGS …`: whatever the text, what
 *   executes is a SELECT, with the limits outermost (an inner SETTINGS cannot raise them) and
 *   readonly=1 (no writes, no setting changes). Before that, a first word other than SELECT/WITH
 *   (INSERT, ALTER, DROP…) is refused by name, and EXPLAIN AST finds functions that reach outside
 *   the database.
 * Parameters are not offered: the text is the operator's own, run as typed, never combined with
 * other input.
 */
export async function runReadOnly(client: ClickHouseClient, sql: string, limits: ReadOnlyLimits = READ_ONLY_DEFAULTS): Promise<ReadOnlyResult> {
  const started = Date.now();
  const text = sql.trim().replace(/;+\s*$/, '');
  if (text.includes(';')) throw new SqlRefusedError('one statement at a time: the text holds a ";" (also refused inside strings and comments)');
  // The first word names the statement: INSERT, ALTER, DROP, SET … are refused by name, before
  // ClickHouse sees them (they could not run as a subquery anyway; this makes the answer clear).
  const first = /^(?:\s|--[^\n]*\n|\/\*[\s\S]*?\*\/|\()*(\w+)/.exec(text)?.[1]?.toUpperCase() ?? '';
  if (!READ_WORDS.has(first)) throw new SqlRefusedError(`only SELECT statements run here; this is ${first || 'not a statement'} (a write, DDL or setting change is never run)`);
  // Parsed as it will run (inside the wrapper), so a trailing SETTINGS or FORMAT reads the same way.
  const wrapped = `SELECT * FROM (\n${text}\n)`;
  const ast = await client.query({ query: `EXPLAIN AST ${wrapped}`, format: 'JSONEachRow' });
  const lines = (await ast.json<string | { explain: string }>()).map((l) => (typeof l === 'string' ? l : l.explain));
  for (const line of lines) {
    const m = /^\s*Function (\w+)/.exec(line);
    if (m?.[1] && OUTSIDE_FUNCTIONS.has(m[1].toLowerCase())) {
      throw new SqlRefusedError(`the statement uses ${m[1]}(), which reaches outside the database; ingestctl sql reads the database only`);
    }
  }
  // Own line for the closing parenthesis: a trailing "-- comment" in the text must not swallow it.
  const settings = [
    `max_execution_time = ${Math.floor(limits.maxExecutionSeconds)}`,
    `max_memory_usage = ${Math.floor(limits.maxMemoryBytes)}`,
    `max_result_rows = ${Math.floor(limits.maxRows) + 1}`,
    `max_result_bytes = ${Math.floor(limits.maxBytes)}`,
    `result_overflow_mode = 'break'`,
    // Both deployments print 64-bit integers the same way (as strings, like ClickHouse's HTTP default).
    `output_format_json_quote_64bit_integers = 1`,
    // Last: readonly=1 forbids changing settings, including those after it in the same clause.
    `readonly = 1`,
  ].join(', ');
  let all: unknown[];
  try {
    const rs = await client.query({ query: `${wrapped} SETTINGS ${settings}`, format: 'JSONCompactEachRowWithNamesAndTypes' });
    all = await rs.json<unknown[]>();
  } catch (e) {
    await clearFailedStatement(client);
    throw e;
  }
  const [names, types, ...data] = all as [string[] | undefined, string[] | undefined, ...unknown[][]];
  const columns = (names ?? []).map((name, i) => ({ name, type: types?.[i] ?? '' }));
  const truncated = data.length > limits.maxRows;
  return { columns, rows: truncated ? data.slice(0, limits.maxRows) : data, truncated, elapsedMs: Date.now() - started };
}

/**
 * Deletes one tenant's live entries with event times in [fromMs, toMs): the "incident" of the
 * lose-and-recover drill (runbooks/drills.md). Only the drill route calls it; synchronous
 * (mutations_sync), so the loss is visible to the next query. Returns the entries it removed.
 */
export async function drillDeleteWindow(client: ClickHouseClient, q: { tenant: string; fromMs: number; toMs: number }): Promise<number> {
  const where = 'tenant_id = {tenant:String} AND ts >= fromUnixTimestamp64Milli({from:Int64}) AND ts < fromUnixTimestamp64Milli({to:Int64})';
  const params = { tenant: q.tenant, from: q.fromMs, to: q.toMs };
  const rs = await client.query({ query: `SELECT count() AS n FROM ${TABLES.live} FINAL WHERE ${where}`, query_params: params, format: 'JSONEachRow' });
  const n = Number((await rs.json<{ n: string | number }>())[0]?.n ?? 0);
  // In the statement, not clickhouse_settings: chDB would keep those for the whole session.
  await client.command({ query: `ALTER TABLE ${TABLES.live} DELETE WHERE ${where} SETTINGS mutations_sync = 2`, query_params: params });
  // A delete does not fire the rollups' view: the window's minutes are marked for recomputing.
  await markWindow(client, q.tenant, q.fromMs, q.toMs);
  return n;
}
