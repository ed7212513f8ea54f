import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { createClient, type ClickHouseClient } from '@clickhouse/client';
import { migrate } from './migrations.ts';
import { ROW_COLUMNS, type TelemetryRow } from './rows.ts';
import { assertServerVersion } from './server-version.ts';

/** Tables the store will touch; identifiers are allow-listed, never built from input. */
export const TABLES = { live: 'telemetry', shadow: 'telemetry_shadow', mirror: 'telemetry_mirror' } as const;
export type TableName = (typeof TABLES)[keyof typeof TABLES];

export interface CountQuery {
  table?: TableName;
  tenant: string;
  type?: string;
  /** Only entries with ts >= sinceMs. */
  sinceMs?: number;
}

/**
 * The loader's INSERT. optimize_on_insert=0: the engine does not collapse equal sorting keys inside
 * each inserted block (FINAL and background merges do that anyway, and every exact read is FINAL);
 * measured with scripts/bench/chdb-insert.ts at about a sixth less engine CPU per row.
 */
const ENCODED_INSERT_SETTINGS = { async_insert: 0, optimize_on_insert: 0 } as const;

export interface StoreOptions {
  /** ClickHouse HTTP URL; when absent, chDB in-process under chdbPath. */
  url?: string;
  database?: string;
  username?: string;
  password?: string;
  chdbPath?: string;
}

/**
 * The analytics store. One implementation over @clickhouse/client; the embedded deployment plugs
 * chDB in as the client's connection, so both run exactly the same SQL.
 */
export class TelemetryStore {
  readonly kind: 'clickhouse' | 'chdb';
  private closed = false;

  private constructor(
    readonly client: ClickHouseClient,
    kind: 'clickhouse' | 'chdb',
    /** chDB's zero-copy insert: the bytes go to the engine's own parser, off the event loop. */
    private readonly rawInsert?: RawInsert,
  ) {
    this.kind = kind;
  }

  static async open(opts: StoreOptions): Promise<TelemetryStore> {
    if (opts.url) {
      // Refused here, with the version found and the one needed, rather than by the first INSERT
      // whose settings the server does not know.
      await assertServerVersion({ url: opts.url, username: opts.username, password: opts.password });
      const client = createClient({
        url: opts.url,
        database: opts.database ?? 'default',
        username: opts.username ?? 'default',
        password: opts.password ?? '',
        // Below ClickHouse's 3 s keep_alive_timeout, so we never reuse a socket the server is closing.
        keep_alive: { enabled: true, idle_socket_ttl: 2500 },
        request_timeout: 60_000,
        clickhouse_settings: { async_insert: 0 },
      });
      return new TelemetryStore(client, 'clickhouse');
    }
    // chdb is loaded only when used so a ClickHouse-server deployment never loads the engine.
    const { createChdbConnection } = await import('chdb/connection').catch((e: unknown) => {
      // The distributed image (deploy/k8s/Dockerfile) ships without chDB on purpose.
      if ((e as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND') throw new Error('CLICKHOUSE_URL is not set and this build has no chDB (the embedded store): set CLICKHOUSE_URL to a ClickHouse server', { cause: e });
      throw e;
    });
    // chdb builds against its own copy of @clickhouse/client-common; the shapes match, the nominal types don't.
    const chdb = createChdbConnection({ path: opts.chdbPath ?? '.data/chdb' });
    const connection = chdb as unknown as NonNullable<Parameters<typeof createClient>[0]>['connection'];
    const client = createClient({ connection });
    return new TelemetryStore(client, 'chdb', (p) => chdb.chdb.rawInsert(p));
  }

  migrate(): Promise<string[]> {
    return migrate(this.client);
  }

  async ping(): Promise<boolean> {
    try {
      const r = await this.client.ping();
      return r.success;
    } catch {
      return false;
    }
  }

  /**
   * Inserts one block. The same token with the same rows is a no-op on retry (ClickHouse block
   * dedup), which covers a retry after an unknown outcome (ECONNRESET mid-insert).
   */
  async insert(table: TableName, rows: TelemetryRow[], dedupToken: string): Promise<void> {
    if (rows.length === 0) return;
    await this.client.insert({
      table,
      values: rows,
      format: 'JSONEachRow',
      clickhouse_settings: { insert_deduplication_token: dedupToken, async_insert: 0 },
    });
  }

  /**
   * Inserts one block given as encoded rows (JSONCompactEachRow lines of ROW_COLUMNS, see rows.ts),
   * as they are: nothing is parsed or re-encoded in JavaScript. Same dedup contract as insert().
   */
  async insertEncoded(table: TableName, body: Buffer, dedupToken: string, override: Record<string, string | number> = {}): Promise<void> {
    assertTable(table);
    if (body.length === 0) return;
    const settings = { insert_deduplication_token: dedupToken, ...ENCODED_INSERT_SETTINGS, ...override };
    // Settings ride on this INSERT alone (chDB's connection would make them session-wide SETs).
    if (this.rawInsert) {
      await this.rawInsert({ table, columns: ROW_COLUMNS, values: body, format: 'JSONCompactEachRow', settings });
      return;
    }
    // exec, not insert: insert() takes a byte stream only for CSV/TSV-like formats and refuses one
    // for JSONCompactEachRow; exec sends the bytes as the body as they are.
    const r = await this.client.exec({
      query: `INSERT INTO ${table} (${ROW_COLUMNS.join(', ')}) FORMAT JSONCompactEachRow`,
      values: Readable.from([body], { objectMode: false }),
      clickhouse_settings: settings,
    });
    // The (empty) answer is read to its end so the keep-alive socket goes back to the pool.
    await finished(r.stream.resume());
  }

  /** Distinct entries (FINAL collapses duplicates not yet merged away). */
  async count(q: CountQuery): Promise<number> {
    const table = q.table ?? TABLES.live;
    assertTable(table);
    const where = ['tenant_id = {tenant:String}'];
    if (q.type) where.push('type = {type:String}');
    if (q.sinceMs !== undefined) where.push('ts >= fromUnixTimestamp64Milli({since:Int64})');
    const rs = await this.client.query({
      query: `SELECT count() AS n FROM ${table} FINAL WHERE ${where.join(' AND ')}`,
      query_params: { tenant: q.tenant, type: q.type ?? '', since: q.sinceMs ?? 0 },
      format: 'JSONEachRow',
    });
    const rows = await rs.json<{ n: string | number }>();
    return Number(rows[0]?.n ?? 0);
  }

  /** Raw rows without FINAL plus distinct ids — what a test needs to prove "exactly once". */
  async rowStats(table: TableName = TABLES.live, tenant?: string): Promise<{ rows: number; distinctIds: number; final: number }> {
    assertTable(table);
    const where = tenant ? 'WHERE tenant_id = {tenant:String}' : '';
    const rs = await this.client.query({
      query: `SELECT (SELECT count() FROM ${table} ${where}) AS rows, (SELECT uniqExact(tenant_id, id) FROM ${table} ${where}) AS ids, (SELECT count() FROM ${table} FINAL ${where}) AS final`,
      query_params: { tenant: tenant ?? '' },
      format: 'JSONEachRow',
    });
    const r = (await rs.json<{ rows: string; ids: string; final: string }>())[0];
    return { rows: Number(r?.rows ?? 0), distinctIds: Number(r?.ids ?? 0), final: Number(r?.final ?? 0) };
  }

  /** Idempotent; chDB aborts if closed during a query, so callers stop their loaders first. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.client.close();
  }
}

type RawInsert = (p: { table: string; columns: ReadonlyArray<string>; values: Buffer; format: 'JSONCompactEachRow'; settings: Record<string, string | number> }) => Promise<unknown>;

function assertTable(t: string): asserts t is TableName {
  if (t !== TABLES.live && t !== TABLES.shadow && t !== TABLES.mirror) throw new Error(`unknown table ${t}`);
}
