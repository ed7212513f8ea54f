import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { HEADERS, ingestError, type QueryHop, type QueryPage, type RollupPage } from '@ingest/contracts';
import { traceHeaders } from '@ingest/observability';
import type { TakeResult } from '../rate/rate-store.ts';

export interface QueryRouteDeps {
  hop: QueryHop;
  /** Takes one token from the tenant's query bucket (its own, never ingest's). */
  take: (tenant: string, rate: number) => Promise<TakeResult>;
  /** For tenants whose limits set no queriesPerSecond. */
  defaultQueriesPerSecond: number;
}

/** Accept values that ask for one entry per line. */
const NDJSON_TYPES = ['application/x-ndjson', 'application/ndjson', 'application/jsonl'];

/**
 * GET /v2/query: the caller's own entries. Registered in the authenticated scope, so
 * `req.principal` is the API key's tenant; the query string travels to the sink writer as it came
 * and is parsed there, and no parameter can name another tenant.
 */
export function registerQueryRoute(scope: FastifyInstance, deps: QueryRouteDeps): void {
  scope.get(
    '/v2/query',
    // Reads are counted in their own bucket below, not in the ingest request rate.
    { config: { rateLimit: false } },
    async (req: FastifyRequest, reply: FastifyReply): Promise<QueryPage | RollupPage | FastifyReply> => {
      const principal = req.principal;
      if (!principal) throw ingestError('INGEST_ERR_UNAUTHENTICATED');
      const { tenant } = principal;
      const rate = principal.limits.queriesPerSecond ?? deps.defaultQueriesPerSecond;
      const got = await deps.take(tenant, rate);
      if (!got.ok) {
        const secs = Math.max(1, Math.ceil(got.retryAfterMs / 1000));
        throw ingestError('INGEST_ERR_QUERY_RATE', [tenant, rate, secs], {
          retryAfterSeconds: secs,
          headers: { 'ratelimit-limit': String(rate), 'ratelimit-remaining': String(got.remaining), 'ratelimit-reset': String(secs) },
        });
      }
      const qmark = req.url.indexOf('?');
      const search = qmark === -1 ? '' : req.url.slice(qmark + 1);
      const page = await deps.hop.query({ search }, { tenant, version: 'v2', trace: traceHeaders(req) });
      if (page.next !== null) void reply.header(HEADERS.nextCursor, page.next);
      const accept = String(req.headers.accept ?? '');
      if (NDJSON_TYPES.some((t) => accept.includes(t))) {
        let body = '';
        if ('entries' in page) for (const e of page.entries) body += `${JSON.stringify(e)}\n`;
        else {
          // One bucket per line, each saying which list it belongs to.
          for (const c of page.counts) body += `${JSON.stringify({ kind: 'count', ...c })}\n`;
          for (const m of page.metrics) body += `${JSON.stringify({ kind: 'metric', ...m })}\n`;
        }
        return reply.type('application/x-ndjson').send(body);
      }
      return page;
    },
  );
}
