import Fastify, { type FastifyInstance } from 'fastify';
import {
  HEADERS,
  ROUTES,
  ingestError,
  type DeadLetter,
  type EntryRejection,
  type HopMeta,
  type IngestResult,
  type NormalizeHop,
  type NormalizeRequest,
  type WriteHop,
} from '@ingest/contracts';
import type { NormalizerConfig } from '@ingest/config';
import { HttpWriteHop, inProcessStage, serveTls } from '@ingest/internal-http';
import { FairBudget, retryAfterSeconds } from '@ingest/queue';
import { createServiceMetrics, protocolErrorOptions, installServiceBasics, serverLogOptions, traceHeaders, traceStage, type LoggingOptions } from '@ingest/observability';
import { normalizeEntry } from './rules/index.ts';

export interface NormalizerOptions {
  config: NormalizerConfig;
  /** The sink writer in this process (one-process topology); otherwise reached over HTTP at config.sinkUrl. */
  sink?: WriteHop;
  logger?: boolean;
  logging?: LoggingOptions;
}

/** The normalizer's HTTP service, and the stage itself for a caller in the same process. */
export type NormalizerApp = FastifyInstance & { hop: NormalizeHop };

/** A dead letter keeps the entry as received, bounded so one hostile entry can't bloat the DLQ. */
const MAX_DEAD_LETTER_RAW = 8 * 1024;

export async function buildNormalizer(opts: NormalizerOptions): Promise<NormalizerApp> {
  const cfg = opts.config;
  const tls = cfg.tls ? serveTls(cfg.tls) : undefined;
  const app = (Fastify as unknown as (o: object) => FastifyInstance)({
    ...serverLogOptions('normalizer', opts.logging, opts.logger !== false),
    bodyLimit: 256 * 1024 * 1024,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    // What Node's parser or the router refuse is answered with a catalog code too.
    ...protocolErrorOptions,
    ...(tls ? { https: tls.https } : {}),
  });
  tls?.attach(app);
  const metrics = createServiceMetrics('normalizer', { defaultMetrics: opts.logger !== false });
  const budget = new FairBudget({ maxBytes: cfg.inflightBytes, maxEntries: cfg.inflightEntries });
  const sink: WriteHop & { close?: () => Promise<void> } =
    opts.sink ?? new HttpWriteHop(cfg.sinkUrl, { name: 'sink-writer', timeoutMs: cfg.downstreamTimeoutMs, overloadedCode: 'INGEST_ERR_SINK_OVERLOADED', internalToken: cfg.internalToken, caFile: cfg.hopCaFile });
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

  /**
   * Validates each entry, encodes the accepted ones once as the rows the table takes, and hands
   * rows and dead letters to the sink writer. Every entry is parsed once, here or by the edge in
   * this process, and nothing after this point parses it again.
   */
  const normalize = async (request: NormalizeRequest, meta: HopMeta): Promise<IngestResult> => {
    if (closing) throw ingestError('INGEST_ERR_SHUTTING_DOWN', [], { retryAfterSeconds: 1 });
    const tenant = request.tenant;
    const n = request.entries.length;
    const got = budget.tryAcquire(tenant, request.bytes, n);
    if (!got.ok) {
      metrics.discarded.inc({ tenant, reason: 'INGEST_ERR_NORMALIZER_OVERLOADED' }, n);
      throw ingestError('INGEST_ERR_NORMALIZER_OVERLOADED', [1], { retryAfterSeconds: retryAfterSeconds(1) });
    }
    metrics.inflightBytes.inc(request.bytes);
    metrics.inflightEntries.inc(n);
    try {
      const rows: Buffer[] = [];
      let rowBytes = 0;
      const rejected: EntryRejection[] = [];
      const deadLetters: Buffer[] = [];
      const ctx = { tenant, receivedAt: request.receivedAt, limits: entryLimits };
      const entries = request.entries;
      for (let i = 0; i < n; i++) {
        const raw = entries[i];
        // Taken over (see NormalizeRequest.entries): once encoded, the parsed entry is let go, so a
        // request waiting for the log's fsync holds its rows, not its object graph, and the graph
        // dies young instead of being copied by every scavenge until it is promoted.
        entries[i] = undefined;
        const out = normalizeEntry(raw, ctx);
        if (out.ok) {
          const row = Buffer.from(out.row);
          rows.push(row);
          rowBytes += row.length;
        } else {
          rejected.push({ index: i, code: out.code, message: out.message });
          const letter: DeadLetter = { tenant, index: request.origins?.[i] ?? i, code: out.code, message: out.message, receivedAt: request.receivedAt, raw: boundedJson(raw) };
          deadLetters.push(Buffer.from(JSON.stringify(letter)));
        }
      }
      // Protocol items the edge could not make entries of: dead-lettered and counted like rejects
      // (they are answered to the producer by the edge, not in `rejected`). Bounded by the edge's
      // entry limit, as the entries are.
      const refused = request.refused ?? [];
      for (const r of refused) {
        const letter: DeadLetter = { tenant, index: r.index, code: r.code, message: r.message, receivedAt: request.receivedAt, raw: boundedJson(r.raw) };
        deadLetters.push(Buffer.from(JSON.stringify(letter)));
      }
      // One counter update per reason per request, not per rejected entry.
      const byReason = new Map<string, number>();
      for (const r of rejected) byReason.set(r.code, (byReason.get(r.code) ?? 0) + 1);
      for (const r of refused) byReason.set(r.code, (byReason.get(r.code) ?? 0) + 1);
      for (const [reason, count] of byReason) metrics.discarded.inc({ tenant, reason }, count);
      const result = await sink.write({ tenant, rows, rowBytes, deadLetters }, meta);
      metrics.accepted.inc({ tenant }, result.accepted);
      return { accepted: result.accepted, rejected };
    } finally {
      got.lease.release();
      metrics.inflightBytes.dec(request.bytes);
      metrics.inflightEntries.dec(n);
    }
  };

  app.post(ROUTES.normalize, async (req): Promise<IngestResult> => {
    const body = req.body as Omit<NormalizeRequest, 'bytes'>;
    const bytes = Number(req.headers['content-length'] ?? 0);
    const meta: HopMeta = { tenant: body.tenant, version: String(req.headers[HEADERS.version] ?? 'v2'), trace: traceHeaders(req) };
    return normalize({ ...body, bytes }, meta);
  });

  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onClose', async () => {
    await sink.close?.();
  });
  const hop: NormalizeHop = { normalize: inProcessStage('normalizer', app.log, (request: NormalizeRequest, meta: HopMeta) => traceStage(app, 'normalizer normalize', meta.trace, (trace) => normalize(request, { ...meta, trace }))) };
  // A plain property, not a fastify decorator: in-process callers need it typed, HTTP callers never see it.
  return Object.assign(app as FastifyInstance, { hop });
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
