import Fastify, { type FastifyInstance } from 'fastify';
import {
  HEADERS,
  ROUTES,
  ingestError,
  type DeadLetter,
  type EntryRejection,
  type IngestResult,
  type NormalizeRequest,
  type NormalizedEntry,
  type WriteRequest,
  type WriteResult,
} from '@ingest/contracts';
import type { NormalizerConfig } from '@ingest/config';
import { HopClient } from '@ingest/internal-http';
import { FairBudget, retryAfterSeconds } from '@ingest/queue';
import { createServiceMetrics, protocolErrorOptions, installServiceBasics, serverLogOptions, traceHeaders, type LoggingOptions } from '@ingest/observability';
import { normalizeEntry } from './rules/index.ts';

export interface NormalizerOptions {
  config: NormalizerConfig;
  logger?: boolean;
  logging?: LoggingOptions;
}

/** A dead letter keeps the entry as received, bounded so one hostile entry can't bloat the DLQ. */
const MAX_DEAD_LETTER_RAW = 8 * 1024;

export async function buildNormalizer(opts: NormalizerOptions): Promise<FastifyInstance> {
  const cfg = opts.config;
  const app = Fastify({
    ...serverLogOptions('normalizer', opts.logging, opts.logger !== false),
    bodyLimit: 256 * 1024 * 1024,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    // What Node's parser or the router refuse is answered with a catalog code too.
    ...protocolErrorOptions,
  });
  const metrics = createServiceMetrics('normalizer', { defaultMetrics: opts.logger !== false });
  const budget = new FairBudget({ maxBytes: cfg.inflightBytes, maxEntries: cfg.inflightEntries });
  const sink = new HopClient(cfg.sinkUrl, { name: 'sink-writer', timeoutMs: cfg.downstreamTimeoutMs, overloadedCode: 'INGEST_ERR_SINK_OVERLOADED', internalToken: cfg.internalToken });
  // One object for the process, so resolveLimits merges it once (it caches per object).
  const entryLimits = { maxLabels: cfg.maxLabels, maxLabelBytes: cfg.maxLabelBytes };
  let closing = false;

  installServiceBasics(app, {
    service: 'normalizer',
    metrics,
    internalToken: cfg.internalToken,
    readiness: () => ({ ready: !closing, checks: {} }),
    status: () => ({ budget: budget.snapshot() }),
  });

  app.post(ROUTES.normalize, async (req): Promise<IngestResult> => {
    if (closing) throw ingestError('INGEST_ERR_SHUTTING_DOWN', [], { retryAfterSeconds: 1 });
    const body = req.body as NormalizeRequest;
    const tenant = body.tenant;
    const bytes = Number(req.headers['content-length'] ?? 0);
    const n = body.entries.length;
    const got = budget.tryAcquire(tenant, bytes, n);
    if (!got.ok) {
      metrics.discarded.inc({ tenant, reason: 'INGEST_ERR_NORMALIZER_OVERLOADED' }, n);
      throw ingestError('INGEST_ERR_NORMALIZER_OVERLOADED', [1], { retryAfterSeconds: retryAfterSeconds(1) });
    }
    metrics.inflightBytes.inc(bytes);
    metrics.inflightEntries.inc(n);
    try {
      const entries: NormalizedEntry[] = [];
      const rejected: EntryRejection[] = [];
      const deadLetters: DeadLetter[] = [];
      const ctx = { tenant, receivedAt: body.receivedAt, limits: entryLimits };
      for (let i = 0; i < n; i++) {
        const raw = body.entries[i];
        const out = normalizeEntry(raw, ctx);
        if (out.ok) {
          entries.push(out.entry);
        } else {
          rejected.push({ index: i, code: out.code, message: out.message });
          deadLetters.push({ tenant, index: body.origins?.[i] ?? i, code: out.code, message: out.message, receivedAt: body.receivedAt, raw: boundedJson(raw) });
        }
      }
      // Protocol items the edge could not make entries of: dead-lettered and counted like rejects
      // (they are answered to the producer by the edge, not in `rejected`). Bounded by the edge's
      // entry limit, as the entries are.
      const refused = body.refused ?? [];
      for (const r of refused) deadLetters.push({ tenant, index: r.index, code: r.code, message: r.message, receivedAt: body.receivedAt, raw: boundedJson(r.raw) });
      // One counter update per reason per request, not per rejected entry.
      const byReason = new Map<string, number>();
      for (const r of rejected) byReason.set(r.code, (byReason.get(r.code) ?? 0) + 1);
      for (const r of refused) byReason.set(r.code, (byReason.get(r.code) ?? 0) + 1);
      for (const [reason, count] of byReason) metrics.discarded.inc({ tenant, reason }, count);
      const write: WriteRequest = { tenant, entries, deadLetters };
      const headers: Record<string, string> = { [HEADERS.tenant]: tenant, [HEADERS.version]: String(req.headers[HEADERS.version] ?? 'v2'), ...traceHeaders(req) };
      const result = await sink.postJson<WriteResult>(ROUTES.write, write, headers);
      metrics.accepted.inc({ tenant }, result.accepted);
      return { accepted: result.accepted, rejected };
    } finally {
      got.lease.release();
      metrics.inflightBytes.dec(bytes);
      metrics.inflightEntries.dec(n);
    }
  });

  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onClose', async () => {
    await sink.close();
  });
  return app;
}

function boundedJson(v: unknown): string {
  let s: string;
  try {
    s = JSON.stringify(v) ?? 'undefined';
  } catch {
    s = String(v);
  }
  return s.length > MAX_DEAD_LETTER_RAW ? s.slice(0, MAX_DEAD_LETTER_RAW) : s;
}
