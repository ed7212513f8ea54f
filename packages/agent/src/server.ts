import { timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import { gunzip, inflate } from 'node:zlib';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { EntryRejection } from '@ingest/contracts';
import { IngestClientError, type EntryInput, type IngestClient } from '@ingest/client';
import { linesToEntries, parseLineProtocol, parsePrecision } from '@ingest/protocols/influx';

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
  logger?: boolean;
}

const RETRY_AFTER_SECONDS = 1;

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
  const client = opts.client;
  const app = Fastify({ logger: opts.logger ?? false, bodyLimit: limit });

  app.removeAllContentTypeParsers();
  // Every body arrives as bytes; routes decompress (bounded) and parse themselves.
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: limit }, (_req, body, done) => done(null, body));

  const token = opts.token ? Buffer.from(opts.token) : undefined;
  app.addHook('onRequest', async (req, reply) => {
    if (!token || req.method === 'GET' || req.method === 'HEAD') return;
    const h = req.headers.authorization ?? '';
    const m = /^(?:Bearer|Token)\s+(.+)$/i.exec(h);
    const q = (req.query as Record<string, string | undefined>)['p'];
    const given = Buffer.from(m?.[1] ?? q ?? '');
    if (given.length !== token.length || !timingSafeEqual(given, token)) {
      return reply.code(401).send(errorBody('CLIENT_ERR_UNAUTHENTICATED', 'this agent requires its token', false));
    }
  });

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    const s = client.stats();
    return reply.code(200).send({ ready: true, backlog: s.backlog, lastError: s.lastError });
  });
  app.get('/stats', async () => client.stats());
  app.get('/metrics', async (_req, reply) => reply.type('text/plain; version=0.0.4').send(prometheus(client)));
  // Influx clients ping before writing (fastify answers HEAD from the GET route).
  app.get('/ping', async (_req, reply) => reply.code(204).send());

  app.post('/v2/ingest', async (req, reply) => {
    const text = await bodyText(req, reply, limit);
    if (text === undefined) return reply;
    let items: unknown[];
    try {
      items = parseEntries(text, req.headers['content-type']);
    } catch (e) {
      return reply.code(400).send(errorBody('CLIENT_ERR_INVALID_BODY', (e as Error).message, false));
    }
    if (items.length === 0) return reply.code(400).send(errorBody('CLIENT_ERR_INVALID_BODY', 'the batch holds no entries', false));
    if (items.length > maxEntries) return reply.code(413).send(errorBody('CLIENT_ERR_TOO_MANY_ENTRIES', `more than ${maxEntries} entries`, false));
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
    return { accepted, rejected };
  });

  const write = async (req: FastifyRequest, reply: FastifyReply) => {
    const q = req.query as Record<string, string | undefined>;
    const precision = parsePrecision(q['precision']);
    if (!precision) return reply.code(400).send({ code: 'invalid', message: `precision "${q['precision']}" is not one of ns, us, ms, s, m, h` });
    const text = await bodyText(req, reply, limit);
    if (text === undefined) return reply;
    const { points, errors } = parseLineProtocol(text, precision, { maxLines: maxEntries });
    const { entries } = linesToEntries(points, { app: lpApp, source: 'line-protocol' });
    let recorded = 0;
    const refused: string[] = [];
    for (const e of entries) {
      const r = await recordOne(client, e, recordTimeoutMs);
      if (r === true) recorded++;
      // Telegraf resends on 5xx; timestamped points have deterministic ids, so the part of this
      // body already recorded is deduplicated at rest.
      else if (r.capacity) return unavailable(reply, r.code, `${r.message} (${recorded} of ${entries.length} points were recorded)`);
      else refused.push(r.message);
    }
    const problems = [...errors.map((e) => `line ${e.line}: ${e.message}`), ...refused];
    // Influx semantics: the good points are written; a 400 names the first bad line, and
    // Telegraf does not resend a 400 (so nothing written is duplicated).
    if (problems.length > 0) return reply.code(400).send({ code: 'invalid', message: `partial write: ${problems[0]} (${problems.length} problem(s))` });
    return reply.code(204).send();
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

function unavailable(reply: FastifyReply, code: string, message: string): FastifyReply {
  return reply.code(503).header('retry-after', String(RETRY_AFTER_SECONDS)).send(errorBody(code, message, true));
}

function errorBody(code: string, message: string, retryable: boolean): { error: { code: string; message: string; retryable: boolean } } {
  return { error: { code, message, retryable } };
}

/** Decompresses (bounded) and decodes the body; answers the request itself and returns undefined on failure. */
async function bodyText(req: FastifyRequest, reply: FastifyReply, limit: number): Promise<string | undefined> {
  const raw = req.body;
  if (!Buffer.isBuffer(raw)) {
    await reply.code(400).send(errorBody('CLIENT_ERR_INVALID_BODY', 'a request body is required', false));
    return undefined;
  }
  const enc = String(req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  let buf: Buffer;
  try {
    if (enc === 'identity' || enc === '') buf = raw;
    else if (enc === 'gzip' || enc === 'x-gzip') buf = await gunzipAsync(raw, { maxOutputLength: limit });
    else if (enc === 'deflate') buf = await inflateAsync(raw, { maxOutputLength: limit });
    else {
      await reply.code(415).send(errorBody('CLIENT_ERR_UNSUPPORTED_ENCODING', `content encoding ${enc.slice(0, 32)} is not accepted; send gzip, deflate or identity`, false));
      return undefined;
    }
  } catch (e) {
    const tooLarge = (e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE';
    if (tooLarge) await reply.code(413).send(errorBody('CLIENT_ERR_BODY_TOO_LARGE', `the body is larger than ${limit} bytes after decompression`, false));
    else await reply.code(400).send(errorBody('CLIENT_ERR_DECOMPRESSION_FAILED', (e as Error).message, false));
    return undefined;
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(buf);
  } catch {
    await reply.code(400).send(errorBody('CLIENT_ERR_INVALID_UTF8', 'the body is not valid UTF-8', false));
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

function prometheus(client: IngestClient): string {
  const s = client.stats();
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
  return `${lines.join('\n')}\n`;
}
