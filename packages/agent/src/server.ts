import { timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import { gunzip, inflate } from 'node:zlib';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { DEFAULT_TIME_WINDOW, IngestError, ingestError, type EntryRejection } from '@ingest/contracts';
import { IngestClientError, type ClientStats, type EntryInput, type IngestClient } from '@ingest/client';
import { linesToEntries, parseLineProtocol, parsePrecision, type LinePoint, type Precision } from '@ingest/protocols/influx';

const gunzipAsync = promisify(gunzip);
const inflateAsync = promisify(inflate);

export interface AgentOptions {
  /** A started client; the agent records through it and never closes it. */
  client: IngestClient;
  /** Request body limit, applied to the compressed body and again after decompression (default 8 MiB). */
  bodyLimitBytes?: number;
  /** Entries (or line-protocol lines) per request (default 10,000). */
  maxEntriesPerRequest?: number;
  /** `app` of entries made from line protocol (default "telegraf"). */
  lineProtocolApp?: string;
  /** When set, local producers must send it (Authorization: Bearer|Token <token>, or ?p=<token>). */
  token?: string;
  /** How long a request waits for buffer room under fullPolicy 'block' before a 503 (default 5 s). */
  recordTimeoutMs?: number;
  /** Line-protocol points older than this (relative to the agent's clock) are refused (default 7 days). */
  maxPastMs?: number;
  /** Line-protocol points further ahead than this are refused (default 10 minutes). */
  maxFutureMs?: number;
  logger?: boolean;
}

/**
 * The normalizer's default timestamp window (maxPastMs / maxFutureMs of its DEFAULT_ENTRY_LIMITS).
 * The agent refuses out-of-window points itself, because by the time the edge would refuse them
 * the producer has long had its 204. A tenant with other limits sets the agent's flags to match.
 */
export const DEFAULT_MAX_PAST_MS = DEFAULT_TIME_WINDOW.maxPastMs;
export const DEFAULT_MAX_FUTURE_MS = DEFAULT_TIME_WINDOW.maxFutureMs;

const RETRY_AFTER_SECONDS = 1;

const LINE_PROTOCOL_ROUTES = new Set(['/write', '/api/v2/write']);

/** Influx's error codes by HTTP status (its `code` field), which its clients print — as the edge answers. */
const INFLUX_CODES: Record<number, string> = { 400: 'invalid', 401: 'unauthorized', 413: 'request too large', 415: 'invalid', 500: 'internal error', 503: 'unavailable' };

/** What the agent answers /stats with: the client's figures plus what the agent itself refused. */
export interface AgentStats extends ClientStats {
  /** Items refused to producers (line-protocol lines, /v2/ingest entries), by reason code. */
  refused: Record<string, number>;
  refusedTotal: number;
}

/** One item of a request that did not become a recorded entry: its 1-based line (or 0-based index) and why. */
interface Refused {
  item: number;
  code: string;
  message: string;
}

/**
 * The sidecar: accepts what the edge accepts on /v2/ingest (JSON array, {entries}, NDJSON; gzip
 * or deflate) plus Influx line protocol on /write and /api/v2/write, and records every entry
 * through the client — so it lands in the WAL first and is forwarded with the agent's own key.
 */
export async function buildAgent(opts: AgentOptions): Promise<FastifyInstance> {
  const limit = opts.bodyLimitBytes ?? 8 * 1024 * 1024;
  const maxEntries = opts.maxEntriesPerRequest ?? 10_000;
  const lpApp = opts.lineProtocolApp ?? 'telegraf';
  const recordTimeoutMs = opts.recordTimeoutMs ?? 5000;
  const maxPastMs = opts.maxPastMs ?? DEFAULT_MAX_PAST_MS;
  const maxFutureMs = opts.maxFutureMs ?? DEFAULT_MAX_FUTURE_MS;
  const client = opts.client;
  const app = Fastify({ logger: opts.logger ?? false, bodyLimit: limit });

  app.removeAllContentTypeParsers();
  // Every body arrives as bytes; routes decompress (bounded) and parse themselves.
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: limit }, (_req, body, done) => done(null, body));

  // Fastify's own refusals (a raw body over the limit) in the route's shape too, with the agent's code.
  app.setErrorHandler((err: { statusCode?: number; code?: string; message: string }, _req, reply) => {
    const status = err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 413) return sendError(reply, 413, 'CLIENT_ERR_BODY_TOO_LARGE', `the body is larger than ${limit} bytes`, false);
    if (status === 500) return sendError(reply, 500, 'CLIENT_ERR_INTERNAL', 'the agent failed to handle the request', true);
    return sendError(reply, status, err.code ?? 'CLIENT_ERR_INVALID_REQUEST', err.message, false);
  });

  const token = opts.token ? Buffer.from(opts.token) : undefined;
  app.addHook('onRequest', async (req, reply) => {
    if (!token || req.method === 'GET' || req.method === 'HEAD') return;
    const h = req.headers.authorization ?? '';
    const m = /^(?:Bearer|Token)\s+(.+)$/i.exec(h);
    const q = (req.query as Record<string, string | undefined>)['p'];
    const given = Buffer.from(m?.[1] ?? q ?? '');
    if (given.length !== token.length || !timingSafeEqual(given, token)) {
      return sendError(reply, 401, 'CLIENT_ERR_UNAUTHENTICATED', 'this agent requires its token', false);
    }
  });

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    const s = client.stats();
    return reply.code(200).send({ ready: true, backlog: s.backlog, lastError: s.lastError });
  });
  // Reasons come from the error catalogs (a few dozen codes at most), so this map stays small.
  const refused = new Map<string, number>();
  const countRefused = (items: readonly Refused[]) => {
    for (const r of items) refused.set(r.code, (refused.get(r.code) ?? 0) + 1);
  };
  const stats = (): AgentStats => {
    const byReason = Object.fromEntries([...refused].sort(([a], [b]) => a.localeCompare(b)));
    return { ...client.stats(), refused: byReason, refusedTotal: [...refused.values()].reduce((a, b) => a + b, 0) };
  };
  app.get('/stats', async () => stats());
  app.get('/metrics', async (_req, reply) => reply.type('text/plain; version=0.0.4').send(prometheus(stats())));
  // Influx clients ping before writing (fastify answers HEAD from the GET route).
  app.get('/ping', async (_req, reply) => reply.code(204).send());

  app.post('/v2/ingest', async (req, reply) => {
    const text = await bodyText(req, reply, limit);
    if (text === undefined) return reply;
    let items: unknown[];
    try {
      items = parseEntries(text, req.headers['content-type']);
    } catch (e) {
      return sendError(reply, 400, 'CLIENT_ERR_INVALID_BODY', (e as Error).message, false);
    }
    if (items.length === 0) return sendError(reply, 400, 'CLIENT_ERR_INVALID_BODY', 'the batch holds no entries', false);
    if (items.length > maxEntries) return sendError(reply, 413, 'CLIENT_ERR_TOO_MANY_ENTRIES', `more than ${maxEntries} entries`, false);
    const rejected: EntryRejection[] = [];
    let accepted = 0;
    for (let i = 0; i < items.length; i++) {
      const item = items[i];
      if (typeof item !== 'object' || item === null || Array.isArray(item)) {
        rejected.push({ index: i, code: 'CLIENT_ERR_INVALID_ENTRY', message: 'entry must be a JSON object' });
        continue;
      }
      const r = await recordOne(client, item as EntryInput, recordTimeoutMs);
      if (r === true) accepted++;
      // Out of room: 503 so the producer retries the request. Entries already recorded from it
      // are sent again then; their ids (the producer's, if it sent them) make that harmless.
      else if (r.capacity) return unavailable(reply, r.code, `${r.message} (${accepted} of ${items.length} entries were recorded)`);
      else rejected.push({ index: i, code: r.code, message: r.message });
    }
    countRefused(rejected.map((r) => ({ item: r.index, code: r.code, message: r.message })));
    return { accepted, rejected };
  });

  // Influx semantics, as the edge answers them: 204 only when every line became a recorded entry;
  // otherwise the good lines are kept and a 400 names the first refused line (Telegraf does not
  // resend a 400, so nothing recorded is duplicated).
  const write = async (req: FastifyRequest, reply: FastifyReply) => {
    const q = req.query as Record<string, string | undefined>;
    const precision = parsePrecision(q['precision']);
    // The edge's codes for what the edge would refuse too, so a producer sees one code either way.
    if (!precision) return sendIngestError(reply, ingestError('INGEST_ERR_INVALID_PARAMETER', ['precision', `"${String(q['precision']).slice(0, 16)}" is not one of ns, us, ms, s, m, h`]));
    const text = await bodyText(req, reply, limit);
    if (text === undefined) return reply;
    const now = Date.now();
    const { points, errors } = parseLineProtocol(text, precision, { maxLines: maxEntries });
    if (errors.some((e) => e.line > maxEntries)) return sendIngestError(reply, ingestError('INGEST_ERR_TOO_MANY_ENTRIES', [maxEntries]));
    const refusals: Refused[] = errors.map((e) => ({ item: e.line, code: 'INGEST_ERR_ENTRY_UNDECODABLE', message: e.message }));
    const inWindow: LinePoint[] = [];
    for (const p of points) {
      const why = outsideWindow(p, precision, now, maxPastMs, maxFutureMs);
      if (why === undefined) inWindow.push(p);
      else refusals.push({ item: p.line, code: 'INGEST_ERR_ENTRY_TIMESTAMP', message: why });
    }
    const lines = linesToEntries(inWindow, { app: lpApp, source: 'line-protocol', now });
    for (const r of lines.refusals) refusals.push({ item: r.item, code: r.code, message: r.message });
    let recorded = 0;
    for (let i = 0; i < lines.entries.length; i++) {
      const r = await recordOne(client, lines.entries[i]!, recordTimeoutMs);
      if (r === true) recorded++;
      // Telegraf resends on 5xx; timestamped points have deterministic ids, so the part of this
      // body already recorded is deduplicated at rest.
      else if (r.capacity) return unavailable(reply, r.code, `${r.message} (${recorded} of ${lines.entries.length} points were recorded)`);
      else refusals.push({ item: lines.origins[i] ?? 0, code: r.code, message: r.message });
    }
    countRefused(refusals);
    if (refusals.length === 0 && recorded > 0) return reply.code(204).send();
    refusals.sort((a, b) => a.item - b.item);
    return sendIngestError(reply, refusalError(recorded, refusals), refusals[0]?.item);
  };
  app.post('/write', write);
  app.post('/api/v2/write', write);

  return app;
}

type RecordOutcome = true | { code: string; message: string; capacity: boolean };

async function recordOne(client: IngestClient, e: EntryInput, timeoutMs: number): Promise<RecordOutcome> {
  try {
    await client.recordAsync(e, { timeoutMs });
    return true;
  } catch (err) {
    if (err instanceof IngestClientError) {
      const capacity = err.code === 'CLIENT_ERR_WAL_FULL' || err.code === 'CLIENT_ERR_BUFFER_FULL' || err.code === 'CLIENT_ERR_TIMEOUT' || err.code === 'CLIENT_ERR_CLOSED';
      return { code: err.code, message: err.message, capacity };
    }
    throw err;
  }
}

/** Why a point's timestamp is outside the window the normalizer accepts, or undefined when it is inside (or absent: then it is "now"). */
function outsideWindow(p: LinePoint, precision: Precision, now: number, maxPastMs: number, maxFutureMs: number): string | undefined {
  const ts = p.timestampMs;
  if (ts === undefined) return undefined;
  const oldest = now - maxPastMs;
  const newest = now + maxFutureMs;
  if (ts >= oldest && ts <= newest) return undefined;
  // The usual cause is a precision that does not match the timestamps (seconds read as ns).
  const hint = `; the timestamp was read with precision=${precision}, check the writer's precision`;
  if (ts < oldest) return `timestamp ${p.timestampNs ?? ''} ns (${iso(ts)}) is older than the accepted window starting ${iso(oldest)}${hint}`;
  return `timestamp ${p.timestampNs ?? ''} ns (${iso(ts)}) is more than ${Math.round(maxFutureMs / 1000)} s ahead of the agent's clock ${iso(now)}${hint}`;
}

function iso(ms: number): string {
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? String(ms) : d.toISOString();
}

/** The edge's error for a line-protocol body not wholly taken: none recorded, or a partial write. */
function refusalError(recorded: number, refusals: readonly Refused[]): IngestError {
  if (refusals.length === 0) return ingestError('INGEST_ERR_EMPTY_BATCH');
  const shown = refusals.slice(0, 3).map((r) => `line ${r.item}: ${r.code}: ${r.message}`);
  const more = refusals.length > shown.length ? `; and ${refusals.length - shown.length} more` : '';
  const summary = `${refusals.length} refused: ${shown.join('; ')}${more}`.slice(0, 1000);
  if (recorded === 0) {
    const base = ingestError('INGEST_ERR_NO_VALID_ENTRIES', [refusals.length]);
    return new IngestError('INGEST_ERR_NO_VALID_ENTRIES', `${base.message}: ${summary}`);
  }
  return ingestError('INGEST_ERR_PARTIAL_WRITE', [`${recorded} points`, summary]);
}

function unavailable(reply: FastifyReply, code: string, message: string): FastifyReply {
  return sendError(reply.header('retry-after', String(RETRY_AFTER_SECONDS)), 503, code, message, true);
}

function sendIngestError(reply: FastifyReply, err: IngestError, line?: number): FastifyReply {
  return sendError(reply, err.statusCode, err.code, err.message, err.retryable, line);
}

/**
 * An error in the shape of the route's protocol: Influx's {code, message} on the line-protocol
 * routes (what Telegraf prints), the edge's {error: {code, message, retryable}} elsewhere.
 */
function sendError(reply: FastifyReply, status: number, code: string, message: string, retryable: boolean, line?: number): FastifyReply {
  if (LINE_PROTOCOL_ROUTES.has(reply.request.routeOptions.url ?? '')) {
    return reply.code(status).send({ code: INFLUX_CODES[status] ?? 'invalid', message: `${code}: ${message}`, ...(line !== undefined ? { line } : {}) });
  }
  return reply.code(status).send({ error: { code, message, retryable } });
}

/** Decompresses (bounded) and decodes the body; answers the request itself and returns undefined on failure. */
async function bodyText(req: FastifyRequest, reply: FastifyReply, limit: number): Promise<string | undefined> {
  const raw = req.body;
  if (!Buffer.isBuffer(raw)) {
    await sendError(reply, 400, 'CLIENT_ERR_INVALID_BODY', 'a request body is required', false);
    return undefined;
  }
  const enc = String(req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  let buf: Buffer;
  try {
    if (enc === 'identity' || enc === '') buf = raw;
    else if (enc === 'gzip' || enc === 'x-gzip') buf = await gunzipAsync(raw, { maxOutputLength: limit });
    else if (enc === 'deflate') buf = await inflateAsync(raw, { maxOutputLength: limit });
    else {
      await sendError(reply, 415, 'CLIENT_ERR_UNSUPPORTED_ENCODING', `content encoding ${enc.slice(0, 32)} is not accepted; send gzip, deflate or identity`, false);
      return undefined;
    }
  } catch (e) {
    const tooLarge = (e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE';
    if (tooLarge) await sendError(reply, 413, 'CLIENT_ERR_BODY_TOO_LARGE', `the body is larger than ${limit} bytes after decompression`, false);
    else await sendError(reply, 400, 'CLIENT_ERR_DECOMPRESSION_FAILED', (e as Error).message, false);
    return undefined;
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(buf);
  } catch {
    await sendError(reply, 400, 'CLIENT_ERR_INVALID_UTF8', 'the body is not valid UTF-8', false);
    return undefined;
  }
}

/** JSON array, {"entries": [...]}, or NDJSON (by content type, or when the JSON parse says so). */
export function parseEntries(text: string, contentType: string | undefined): unknown[] {
  const ct = (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  const ndjson = ct === 'application/x-ndjson' || ct === 'application/ndjson' || ct === 'application/jsonl';
  if (!ndjson) {
    const v: unknown = JSON.parse(text);
    if (Array.isArray(v)) return v;
    if (typeof v === 'object' && v !== null && Array.isArray((v as { entries?: unknown }).entries)) return (v as { entries: unknown[] }).entries;
    if (typeof v === 'object' && v !== null) return [v];
    throw new Error('the body must be a JSON array of entries, an object {"entries": [...]}, or NDJSON');
  }
  const out: unknown[] = [];
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (t !== '') out.push(JSON.parse(t));
  }
  return out;
}

function prometheus(s: AgentStats): string {
  const lines: string[] = [];
  const metric = (name: string, type: 'counter' | 'gauge', help: string, value: number) => {
    lines.push(`# HELP ingest_agent_${name} ${help}`, `# TYPE ingest_agent_${name} ${type}`, `ingest_agent_${name} ${value}`);
  };
  metric('appended_total', 'counter', 'Entries recorded.', s.appendedTotal);
  metric('exported_total', 'counter', 'Entries the edge accepted.', s.exportedTotal);
  metric('dropped_total', 'counter', 'Entries dropped by the full policy.', s.droppedTotal);
  metric('retries_total', 'counter', 'Delivery attempts retried.', s.retriesTotal);
  metric('failed_total', 'counter', 'Entries refused for good.', s.failedTotal);
  metric('corrupt_total', 'counter', 'Entries lost to WAL damage.', s.corruptTotal);
  metric('backlog', 'gauge', 'Entries not yet delivered.', s.backlog);
  metric('disk_bytes', 'gauge', 'Bytes of WAL segments on disk.', s.diskBytes);
  metric('oldest_unacked_age_seconds', 'gauge', 'Age of the oldest undelivered entry.', s.oldestUnackedAgeMs / 1000);
  metric('in_flight', 'gauge', 'Requests to the edge in flight.', s.inFlight);
  lines.push('# HELP ingest_agent_refused_total Items refused to producers (line-protocol lines, /v2/ingest entries), by reason.', '# TYPE ingest_agent_refused_total counter');
  for (const [reason, n] of Object.entries(s.refused)) lines.push(`ingest_agent_refused_total{reason="${reason}"} ${n}`);
  return `${lines.join('\n')}\n`;
}
