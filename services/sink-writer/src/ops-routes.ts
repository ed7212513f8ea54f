import type { FastifyInstance } from 'fastify';
import { ingestError } from '@ingest/contracts';
import { countBuckets, drillDeleteWindow, isBucket, isReadonlyRefusal, runReadOnly, SqlRefusedError, TABLES, type TableName, type TelemetryStore } from '@ingest/storage';

/** Rows a bucket count returns at most (an hour per tenant and type for a month of 13 tenants). */
export const MAX_BUCKET_ROWS = 50_000;
/** Longest statement text accepted: an operator's query, not a data load. */
const MAX_SQL_CHARS = 64 * 1024;

const badRequest = (why: string) => ingestError('INGEST_ERR_INVALID_BODY', [why]);

function epochMs(raw: unknown, name: string): number {
  const n = typeof raw === 'string' && /^-?\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n)) throw badRequest(`query parameter ${name} must be epoch milliseconds`);
  return n;
}

function tableParam(t: unknown): TableName {
  if (t === undefined || t === TABLES.live) return TABLES.live;
  if (t === TABLES.shadow || t === TABLES.mirror) return t;
  throw badRequest(`table must be one of ${Object.values(TABLES).join(', ')}`);
}

/**
 * Operator reads (and the drill's one deliberate delete) on the sink writer, which in the embedded
 * deployment owns the only chDB session. All under /admin, so the internal token is checked on
 * the matched route like every other admin route.
 */
export function registerOpsRoutes(app: FastifyInstance, deps: { store: TelemetryStore; drillRoutes: boolean }): void {
  const { store } = deps;

  app.get('/admin/v1/count-buckets', async (req) => {
    const q = req.query as Record<string, unknown>;
    const from = epochMs(q['from'], 'from');
    const to = epochMs(q['to'], 'to');
    if (from >= to) throw badRequest('from must be before to (the window is [from, to))');
    const by = typeof q['by'] === 'string' ? q['by'] : 'hour';
    if (!isBucket(by)) throw badRequest('by must be hour or day');
    const tenant = typeof q['tenant'] === 'string' && q['tenant'] !== '' ? q['tenant'] : undefined;
    const type = typeof q['type'] === 'string' && q['type'] !== '' ? q['type'] : undefined;
    const table = tableParam(q['table']);
    const res = await countBuckets(store.client, { table, fromMs: from, toMs: to, by, limit: MAX_BUCKET_ROWS, ...(tenant !== undefined ? { tenant } : {}), ...(type !== undefined ? { type } : {}) });
    return { table, from: new Date(from).toISOString(), to: new Date(to).toISOString(), by, tenant: tenant ?? null, type: type ?? null, ...res };
  });

  app.post('/admin/v1/sql', async (req) => {
    const body = req.body as { sql?: unknown } | null;
    const sql = body?.sql;
    if (typeof sql !== 'string' || sql.trim() === '') throw badRequest('send {"sql": "SELECT …"}');
    if (sql.length > MAX_SQL_CHARS) throw badRequest(`the statement is over ${MAX_SQL_CHARS} characters`);
    try {
      return await runReadOnly(store.client, sql);
    } catch (e) {
      if (e instanceof SqlRefusedError) throw ingestError('INGEST_ERR_SQL_REFUSED', [e.message]);
      if (isReadonlyRefusal(e)) throw ingestError('INGEST_ERR_SQL_REFUSED', [`ClickHouse refused it in readonly mode (${(e as Error).message.slice(0, 300)})`]);
      // ClickHouse's own errors carry a type (SYNTAX_ERROR, UNKNOWN_TABLE, TIMEOUT_EXCEEDED …); anything else is ours.
      if (typeof (e as { type?: unknown }).type === 'string') throw ingestError('INGEST_ERR_SQL_FAILED', [(e as Error).message.slice(0, 1000)]);
      throw e;
    }
  });

  if (deps.drillRoutes) {
    app.post('/admin/v1/drill/delete-hour', async (req) => {
      const b = (req.body ?? {}) as { tenant?: unknown; hour?: unknown };
      if (typeof b.tenant !== 'string' || b.tenant === '') throw badRequest('tenant is required');
      const hour = typeof b.hour === 'string' ? Date.parse(b.hour) : NaN;
      if (!Number.isFinite(hour) || hour % 3_600_000 !== 0) throw badRequest('hour must be the start of a UTC hour, e.g. 2026-11-20T10:00:00Z');
      const deleted = await drillDeleteWindow(store.client, { tenant: b.tenant, fromMs: hour, toMs: hour + 3_600_000 });
      app.log.warn({ tenant: b.tenant, hour: new Date(hour).toISOString(), deleted }, 'DRILL: deleted live entries on purpose (SINK_DRILL_ROUTES=true)');
      return { drill: true, tenant: b.tenant, hour: new Date(hour).toISOString(), deleted };
    });
  }
}
