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

/** A service the command needs did not answer: exit code 3 (EXIT.UNREACHABLE). */
export class UnreachableError extends Error {
  constructor(what: string, url: string, cause: unknown) {
    super(`cannot reach ${what} at ${url} (${cause instanceof Error ? cause.message : String(cause)})`);
    this.name = 'UnreachableError';
  }
}

export interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
  env: Readonly<Record<string, string | undefined>>;
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
