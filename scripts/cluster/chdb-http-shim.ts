/**
 * chDB behind a ClickHouse-HTTP shim (not a ClickHouse server).
 *
 * Debian's clickhouse-server (18.16) is older than the store's minimum (22.2), so `pnpm
 * cluster:test` runs the real engine, chDB, in this process and speaks just enough of ClickHouse's
 * HTTP interface for @clickhouse/client's HTTP transport: the sink writers then take their
 * distributed path (CLICKHOUSE_URL) against one shared store, as they would against a server.
 *
 * Covered: GET/HEAD `/` and `/ping`; POST/GET with the SQL in `query` and/or the body; `param_*`
 * query parameters; settings as URL parameters (per INSERT; a SETTINGS clause on SELECT/WITH/EXPLAIN;
 * dropped on DDL); `FORMAT x` at the end of the SQL or `default_format`; INSERT … FORMAT with the
 * rows in the body (gzip'd or not); X-ClickHouse-Summary / -Query-Id / -Format headers; errors as
 * a non-2xx answer with ClickHouse's `Code: N. DB::Exception: …` text and X-ClickHouse-Exception-Code.
 * Not covered: sessions, multipart parameters, compressed responses, auth (any user is accepted),
 * streaming results (answers are buffered). Test use only; it lives under scripts/, not in a product package.
 *
 * Usage: tsx scripts/cluster/chdb-http-shim.ts --host 0.0.0.0 --port 8123 --path /data/chdb
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { Session, type RawInsertFormat } from 'chdb';

export const SHIM_NAME = 'chDB behind a ClickHouse-HTTP shim (not a ClickHouse server)';

/** URL parameters that are the HTTP layer's own, never engine settings. */
const HTTP_PARAMS = new Set([
  'query', 'database', 'default_format', 'query_id', 'session_id', 'session_timeout', 'session_check', 'user', 'password', 'role',
  'compress', 'decompress', 'buffer_size', 'wait_end_of_query', 'enable_http_compression', 'http_zlib_compression_level',
  'send_progress_in_http_headers', 'http_headers_progress_interval_ms', 'http_response_buffer_size', 'http_send_progress_interval_ms',
]);
const RAW_INSERT_FORMATS: ReadonlySet<string> = new Set(['JSONEachRow', 'JSONCompactEachRow', 'CSV', 'CSVWithNames', 'TSV', 'TabSeparated', 'TSVWithNames', 'TabSeparatedWithNames']);
/** A bound on a request body: the loader's batches are a few MiB. */
const MAX_BODY_BYTES = 256 * 1024 * 1024;
const INSERT_RE = /^\s*INSERT\s+INTO\s+([A-Za-z_][\w.]*)\s*(?:\(([^)]*)\))?\s*FORMAT\s+(\w+)\s*$/i;
const TRAILING_FORMAT_RE = /\s+FORMAT\s+(\w+)\s*;?\s*$/i;
const SETTING_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

class HttpError extends Error {
  constructor(readonly status: number, message: string, readonly code = 0) {
    super(message);
  }
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    req.on('data', (c: Buffer) => {
      n += c.length;
      if (n > MAX_BODY_BYTES) {
        reject(new HttpError(413, `body over ${MAX_BODY_BYTES} bytes`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      try {
        resolve(req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw);
      } catch (e) {
        reject(new HttpError(400, `cannot gunzip the body: ${(e as Error).message}`));
      }
    });
    req.on('error', reject);
  });
}

/** @clickhouse/client writes String parameters in ClickHouse's escaped text form; chDB binds a JS string as the value itself. */
function unescapeTextParam(v: string): string {
  const map: Record<string, string> = { t: '\t', n: '\n', r: '\r', b: '\b', f: '\f', '0': '\0', '\\': '\\', "'": "'" };
  return v.replace(/\\(.)/g, (_m, c: string) => map[c] ?? c);
}

/** `param_x` URL parameters, with String ones unescaped (their type comes from the `{x:Type}` placeholder). */
function bindParams(sql: string, params: URLSearchParams): Record<string, string> | undefined {
  const types = new Map<string, string>();
  for (const m of sql.matchAll(/\{\s*([A-Za-z_][\w]*)\s*:\s*([^}]+)\}/g)) types.set(m[1] as string, (m[2] as string).trim());
  const out: Record<string, string> = {};
  let any = false;
  for (const [k, v] of params) {
    if (!k.startsWith('param_')) continue;
    const name = k.slice('param_'.length);
    const type = types.get(name) ?? '';
    out[name] = /^(LowCardinality\()?(Nullable\()?String\)?\)?$/.test(type) ? unescapeTextParam(v) : v;
    any = true;
  }
  return any ? out : undefined;
}

function settingsOf(params: URLSearchParams): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of params) {
    if (HTTP_PARAMS.has(k) || k.startsWith('param_')) continue;
    if (!SETTING_NAME_RE.test(k)) throw new HttpError(400, `setting name ${JSON.stringify(k)} is not valid`, 115);
    out[k] = v;
  }
  return out;
}

function settingLiteral(v: string): string {
  return /^-?\d+(\.\d+)?$/.test(v) ? v : `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** Settings ride on this query alone (a chDB session would keep a SET for every later query). */
function withSettingsClause(sql: string, settings: Record<string, string>): string {
  const parts = Object.entries(settings).filter(([k]) => k !== 'async_insert' && !k.startsWith('insert_')).map(([k, v]) => `${k} = ${settingLiteral(v)}`);
  if (parts.length === 0 || !/^\s*(SELECT|WITH|EXPLAIN|\()/i.test(sql)) return sql;
  // A SETTINGS clause the caller wrote is the statement's last clause: extend it rather than add a second one.
  return /\bSETTINGS\b/i.test(sql) ? `${sql.trimEnd()}, ${parts.join(', ')}` : `${sql.trimEnd()} SETTINGS ${parts.join(', ')}`;
}

function contentType(format: string): string {
  return /^JSON/i.test(format) && !/EachRow/i.test(format) ? 'application/json; charset=UTF-8' : /EachRow/i.test(format) ? 'application/x-ndjson; charset=UTF-8' : 'text/plain; charset=UTF-8';
}

interface Summary {
  read_rows: number;
  read_bytes: number;
  written_rows: number;
  written_bytes: number;
  elapsed_s: number;
}

function summaryHeader(s: Summary): string {
  const str = (n: number): string => String(Math.max(0, Math.round(n)));
  return JSON.stringify({
    read_rows: str(s.read_rows),
    read_bytes: str(s.read_bytes),
    written_rows: str(s.written_rows),
    written_bytes: str(s.written_bytes),
    total_rows_to_read: '0',
    result_rows: str(s.written_rows || s.read_rows),
    result_bytes: str(s.written_bytes || s.read_bytes),
    elapsed_ns: str(s.elapsed_s * 1e9),
  });
}

export function startShim(opts: { host: string; port: number; path: string }): Promise<{ close(): Promise<void>; url: string }> {
  const session = new Session(opts.path);

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://shim');
    if ((url.pathname === '/ping' || url.pathname === '/') && !url.searchParams.has('query') && req.method !== 'POST') {
      res.writeHead(200, { 'content-type': 'text/plain; charset=UTF-8' }).end('Ok.\n');
      return;
    }
    if (url.pathname !== '/') throw new HttpError(404, `no handler for ${url.pathname} in the shim`);
    if (String(req.headers['content-type'] ?? '').startsWith('multipart/')) throw new HttpError(400, 'multipart parameters are not supported by the shim');
    const body = (await readBody(req)).toString('utf8');
    const params = url.searchParams;
    const q = params.get('query');
    const settings = settingsOf(params);
    const queryId = params.get('query_id') ?? randomUUID();
    const headers: Record<string, string> = { 'x-clickhouse-query-id': queryId, 'x-clickhouse-timezone': 'UTC', 'x-clickhouse-server-display-name': 'chdb-http-shim' };

    const ins = q !== null && body.trim().length > 0 ? INSERT_RE.exec(q) : null;
    if (ins && RAW_INSERT_FORMATS.has(ins[3] as string)) {
      const columns = ins[2] ? ins[2].split(',').map((c) => c.trim().replace(/^[`"]|[`"]$/g, '')) : undefined;
      const r = await session.insert({ table: ins[1] as string, values: Buffer.from(body), format: ins[3] as RawInsertFormat, ...(columns ? { columns } : {}), settings });
      res.writeHead(200, { ...headers, 'x-clickhouse-summary': summaryHeader({ read_rows: r.rowsWritten, read_bytes: r.bytesWritten, written_rows: r.rowsWritten, written_bytes: r.bytesWritten, elapsed_s: r.elapsed }) }).end();
      return;
    }
    let sql = q !== null ? (body.length > 0 ? `${q}\n${body}` : q) : body;
    if (sql.trim() === '') throw new HttpError(400, 'Empty query', 62);
    let format = params.get('default_format') ?? 'TabSeparated';
    // INSERT with inline rows keeps its FORMAT; elsewhere the output format is chDB's option.
    if (!/^\s*INSERT\b/i.test(sql)) {
      const m = TRAILING_FORMAT_RE.exec(sql);
      if (m) {
        format = m[1] as string;
        sql = sql.slice(0, m.index);
      }
      sql = withSettingsClause(sql, settings);
    }
    const bound = bindParams(sql, params);
    const r = bound ? await session.queryBindAsync(sql, bound, { format }) : await session.queryAsync(sql, { format });
    const out = Buffer.from(r.bytes());
    res.writeHead(200, {
      ...headers,
      'content-type': contentType(format),
      'x-clickhouse-format': format,
      'x-clickhouse-summary': summaryHeader({ read_rows: r.rowsRead, read_bytes: r.bytesRead, written_rows: 0, written_bytes: 0, elapsed_s: r.elapsed }),
    }).end(out);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      const err = e as { message?: string; clickhouseCode?: number; status?: number; code?: unknown };
      const code = typeof err.clickhouseCode === 'number' ? err.clickhouseCode : e instanceof HttpError ? e.code : 1001;
      const message = String(err.message ?? e);
      // @clickhouse/client parses "Code: N. DB::Exception: … (TYPE)" out of the body.
      const text = message.startsWith('Code:') ? message : `Code: ${code}. DB::Exception: ${message}. (SHIM_ERROR)`;
      if (!res.headersSent) res.writeHead(e instanceof HttpError ? e.status : 500, { 'content-type': 'text/plain; charset=UTF-8', 'x-clickhouse-exception-code': String(code) });
      res.end(`${text}\n`);
    });
  });
  // ClickHouse closes idle keep-alive sockets after 3 s; the store's client is tuned below that.
  server.keepAliveTimeout = 3000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      let closed = false;
      const port = (server.address() as AddressInfo).port;
      resolve({
        url: `http://${opts.host}:${port}`,
        close: async () => {
          if (closed) return;
          closed = true;
          await new Promise<void>((r) => server.close(() => r()));
          session.close();
        },
      });
    });
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { host: { type: 'string', default: '127.0.0.1' }, port: { type: 'string', default: '8123' }, path: { type: 'string' } } });
  if (!values.path) {
    console.error('chdb-http-shim: --path <data dir> is required');
    process.exit(2);
  }
  const shim = await startShim({ host: values.host, port: Number(values.port), path: values.path });
  console.log(`${SHIM_NAME} listening on ${shim.url}, data in ${values.path}`);
  const stop = (): void => {
    shim.close().then(() => process.exit(0), () => process.exit(1));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
