import path from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { ExitCode } from './exit-codes.ts';

/** A usage error: printed with the command's help, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/**
 * Why a request to a service failed, in words an operator acts on: "connection refused", "timed
 * out after 5 s", "no such host", rather than fetch's "fetch failed" (the reason is in its cause).
 */
export function whyUnreachable(e: unknown, timeoutMs?: number): string {
  const err = e as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (err.name === 'TimeoutError' || err.name === 'AbortError') return timeoutMs ? `timed out after ${timeoutMs / 1000} s` : 'timed out';
  const code = err.cause?.code;
  const words: Record<string, string> = {
    ECONNREFUSED: 'connection refused (nothing listens there: is it running, on this port?)',
    ECONNRESET: 'connection reset',
    ENOTFOUND: 'no such host',
    EAI_AGAIN: 'host name lookup failed',
    EHOSTUNREACH: 'host unreachable',
    ETIMEDOUT: 'connect timed out',
    UND_ERR_CONNECT_TIMEOUT: 'connect timed out',
    UND_ERR_SOCKET: 'the connection closed',
  };
  if (code && words[code]) return words[code];
  if (code) return `${code}${err.cause?.message ? `: ${err.cause.message}` : ''}`;
  return err.cause?.message ?? err.message ?? String(e);
}

/** A service the command needs did not answer: exit code 3 (EXIT.UNREACHABLE). */
export class UnreachableError extends Error {
  constructor(what: string, url: string, cause: unknown) {
    super(`cannot reach ${what} at ${url}: ${whyUnreachable(cause)}`);
    this.name = 'UnreachableError';
  }
}

export interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
  env: Readonly<Record<string, string | undefined>>;
  /** Aborted on Ctrl-C for commands that run until stopped (tail); absent: they run until killed. */
  signal?: AbortSignal;
}

export interface Command {
  name: string;
  summary: string;
  help: string;
  run(argv: string[], io: Io): Promise<ExitCode>;
}

type Options = NonNullable<ParseArgsConfig['options']>;

export function parse<O extends Options>(argv: string[], options: O) {
  try {
    return parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' }, json: { type: 'boolean' } }, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** "15m", "2h", "7d", "30s" → milliseconds. */
export function parseDuration(s: string): number {
  const m = /^(\d+)\s*(s|m|h|d)$/.exec(s.trim());
  if (!m) throw new UsageError(`"${s}" is not a duration (use e.g. 30s, 15m, 2h, 7d)`);
  const n = Number(m[1]);
  return n * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'h' | 'd'];
}

/** RFC 3339 with a zone, a bare UTC date, "now" or "-2h" → epoch ms. */
export function parseWhen(s: string, now: number, flag: string): number {
  const t = s.trim();
  if (t === 'now') return now;
  const rel = /^-(\d+\s*[smhd])$/.exec(t);
  if (rel?.[1]) return now - parseDuration(rel[1]);
  if (/^\d{4}-\d{2}-\d{2}$/.test(t)) {
    const ms = Date.parse(`${t}T00:00:00Z`);
    if (Number.isFinite(ms)) return ms;
  }
  // A zone is required: a zone-less time is read differently by different machines.
  if (/^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})$/.test(t)) {
    const ms = Date.parse(t.replace(' ', 'T'));
    if (Number.isFinite(ms)) return ms;
  }
  throw new UsageError(`${flag}=${s} is not a time: use RFC 3339 with a zone (2026-11-20T10:00:00Z), a UTC date (2026-11-20), now, or relative like -2h`);
}

export function table(rows: Array<Record<string, string | number>>): string {
  if (rows.length === 0) return '(none)';
  const cols = Object.keys(rows[0] ?? {});
  const w = cols.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c] ?? '').length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(w[i] ?? 0)).join('  ').trimEnd();
  return [line(cols.map((c) => c.toUpperCase())), ...rows.map((r) => line(cols.map((c) => String(r[c] ?? ''))))].join('\n');
}

/** Headers for the services' /admin routes (the shared internal token, when one is configured). */
export function adminHeaders(env: Io['env']): Record<string, string> {
  const t = env['INGEST_INTERNAL_TOKEN'];
  return t ? { 'x-ingest-internal-token': t } : {};
}

/** The tenants file every command reads: TENANTS_FILE, or tenants.json in the data directory. */
export function tenantsFile(env: Io['env']): string {
  return env['TENANTS_FILE'] ?? path.join(env['INGEST_DATA_DIR'] ?? '.data', 'tenants.json');
}
