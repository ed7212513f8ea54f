import { createClient } from '@clickhouse/client';

/**
 * The oldest ClickHouse server the store's SQL runs on. The binding feature is
 * `insert_deduplication_token` (ClickHouse 22.2, with `non_replicated_deduplication_window` for a
 * plain MergeTree): without it a retried block after an unknown outcome is inserted twice. Everything
 * else the SQL uses is older: Map (21.x), JSONCompactEachRow input (20.x), `{name:Type}` query
 * parameters over HTTP (19.x), DateTime64 and fromUnixTimestamp64Milli (20.x). Documented in
 * README ("ClickHouse server versions").
 */
export const MIN_CLICKHOUSE_VERSION = '22.2';

/** A server older than MIN_CLICKHOUSE_VERSION: refused at open, before any SQL it would misread. */
export class UnsupportedClickHouseVersionError extends Error {
  constructor(
    readonly found: string,
    readonly url: string,
  ) {
    super(
      `ClickHouse server at ${url} is version ${found}; this service needs ClickHouse ${MIN_CLICKHOUSE_VERSION} or newer ` +
        `(insert_deduplication_token, which makes retried inserts exactly-once). Upgrade the server or point CLICKHOUSE_URL at a newer one.`,
    );
    this.name = 'UnsupportedClickHouseVersionError';
  }
}

/** Numeric major.minor.patch… parts; "22.2.1.2139" → [22, 2, 1, 2139]. Non-numeric tails are dropped. */
function parts(v: string): number[] {
  const out: number[] = [];
  for (const p of v.trim().split('.')) {
    const m = /^\d+/.exec(p);
    if (!m) break;
    out.push(Number(m[0]));
  }
  return out;
}

/** True when `found` is at least `min`, comparing numeric parts left to right. */
export function versionAtLeast(found: string, min: string): boolean {
  const a = parts(found);
  const b = parts(min);
  if (a.length === 0) return false;
  for (let i = 0; i < b.length; i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    if (x !== y) return x > y;
  }
  return true;
}

export interface VersionProbe {
  url: string;
  username?: string;
  password?: string;
}

/**
 * Asks the server for version() and throws UnsupportedClickHouseVersionError when it is too old.
 * Its own client without the store's default settings or database: an old server refuses a setting
 * it does not know (async_insert) or a database not created yet before it would answer, and the
 * operator would get that error instead of the one that says what to do.
 */
export async function assertServerVersion(p: VersionProbe): Promise<string> {
  const client = createClient({ url: p.url, username: p.username ?? 'default', password: p.password ?? '', request_timeout: 10_000 });
  try {
    const rs = await client.query({ query: 'SELECT version() AS v', format: 'JSONEachRow' });
    const v = String((await rs.json<{ v: string }>())[0]?.v ?? '');
    if (!versionAtLeast(v, MIN_CLICKHOUSE_VERSION)) throw new UnsupportedClickHouseVersionError(v || '(unknown)', redact(p.url));
    return v;
  } finally {
    await client.close();
  }
}

/** The URL as it can go in a log line: credentials in it are dropped. */
function redact(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString().replace(/\/$/, '');
  } catch {
    return '(invalid url)';
  }
}
