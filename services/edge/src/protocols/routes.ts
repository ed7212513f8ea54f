import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { IngestError, ingestError, type IngestResult } from '@ingest/contracts';
import { sendError, toIngestError } from '@ingest/observability';
import { decodeLineProtocol, decodeLokiPush, decodeRemoteWrite, lokiEncoding, decodeOtlpLogs, decodeOtlpMetrics, otlpEncoding, otlpStatus, otlpSuccess, plainLogsToEntries, preloadProtocolDefinitions, type Decoded, type OtlpEncoding, type OtlpSignal } from '@ingest/protocols';
import { decodeUtf8, parseBoundedJson, parseEntries, type ParsedBody } from '../body/read-body.ts';

export interface ProtocolRouteDeps {
  /** The shared tail of every ingest route: rates, budget hold, normalizer (app.ts). */
  ingestParsed: (req: FastifyRequest, body: ParsedBody) => Promise<IngestResult>;
  /** Reads a body whole through the request's budget lease, decompressing per `encoding`. */
  readCharged: (req: FastifyRequest, payload: NodeJS.ReadableStream, encoding: string | undefined) => Promise<Buffer>;
  bodyLimitBytes: number;
  maxEntries: number;
  maxDepth: number;
  /** Counts items a decoder left out on purpose (not refusals), by tenant and reason. */
  countSkipped: (req: FastifyRequest, reason: string, n: number) => void;
}

/** A decoded body's fate: entries taken, and each refused item (by its line or place) with its reason. */
export interface Outcome {
  accepted: number;
  rejected: { item: number; code: string; message: string }[];
  skipped: number;
}

const OTLP_ROUTES: Record<string, OtlpSignal | 'traces'> = { '/v1/logs': 'logs', '/v1/metrics': 'metrics', '/v1/traces': 'traces' };

/**
 * The protocols producers already speak, in their own plugin context inside the authenticated
 * scope: the scope's hooks (key, request rate, budget admission, slow-body cut) run first, then a
 * raw-bytes parser chosen by the route (not by the content type), then the route's decoder, then
 * the same ingestParsed as /v2/ingest. Errors are answered in the protocol's own shape.
 */
export async function registerProtocolRoutes(scope: FastifyInstance, deps: ProtocolRouteDeps): Promise<void> {
  preloadProtocolDefinitions();
  await scope.register(async (p) => {
    p.removeAllContentTypeParsers();
    p.addContentTypeParser('*', async (req: FastifyRequest, payload: NodeJS.ReadableStream): Promise<Buffer> => {
      const enc = String(req.headers['content-encoding'] ?? '').trim().toLowerCase();
      // Snappy (remote write) is the block format, not a stream: the decoder undoes it, bounded by the body limit.
      return deps.readCharged(req, payload, enc === 'snappy' || enc === '' ? undefined : enc);
    });
    p.setErrorHandler((err, req, reply) => sendError(reply, toIngestError(err), renderFor(req)));

    const parseBounded = (text: string): unknown => parseBoundedJson(text, deps.maxDepth);

    /** `bytes`: the body as read; a decoder that inflated it (snappy) reports the inflated size, which is what is accounted. */
    const ingestDecoded = async (req: FastifyRequest, decoded: Decoded, read: number): Promise<Outcome> => {
      const bytes = decoded.bytes ?? read;
      const rejected: Outcome['rejected'] = decoded.refusals.map((r) => ({ item: r.item, code: r.code, message: r.message }));
      let accepted = 0;
      if (decoded.entries.length > 0 || decoded.refusals.length > 0) {
        // Items that never became entries travel along so the normalizer counts and dead-letters
        // them with its own rejects: nothing refused disappears without a record.
        const refused = decoded.refusals.map((r) => ({ index: r.item, code: r.code, message: r.message, raw: r.raw ?? null }));
        const result = await deps.ingestParsed(req, { entries: decoded.entries, bytes, origins: decoded.origins, ...(refused.length > 0 ? { refused } : {}) });
        accepted = result.accepted;
        for (const r of result.rejected) rejected.push({ item: decoded.origins[r.index] ?? r.index, code: r.code, message: r.message });
      }
      rejected.sort((a, b) => a.item - b.item);
      for (const [reason, n] of Object.entries(decoded.skippedBy)) deps.countSkipped(req, reason, n);
      return { accepted, rejected, skipped: decoded.skipped };
    };

    const otlp = (signal: OtlpSignal) => async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
      const encoding = otlpEncoding(req.headers['content-type']);
      if (encoding === undefined) throw unsupportedType(req, 'application/x-protobuf or application/json');
      const body = rawOf(req);
      const opts = { now: Date.now(), maxEntries: deps.maxEntries, parseJson: parseBounded };
      const decoded = signal === 'logs' ? decodeOtlpLogs(body.bytes, encoding, opts) : decodeOtlpMetrics(body.bytes, encoding, opts);
      const outcome = await ingestDecoded(req, decoded, body.bytes.byteLength);
      if (outcome.accepted === 0) throw noneAccepted(outcome);
      const r = otlpSuccess(signal, encoding, outcome.rejected.length, summary(outcome.rejected, signal === 'logs' ? 'log record' : 'data point'));
      return reply.code(200).type(r.contentType).send(r.body);
    };
    p.post('/v1/logs', otlp('logs'));
    p.post('/v1/metrics', otlp('metrics'));
    p.post('/v1/traces', async () => {
      throw ingestError('INGEST_ERR_SIGNAL_NOT_SUPPORTED', ['traces']);
    });

    // Influx line protocol, 2.x and 1.x write APIs. Influx's semantics: the valid lines are
    // written; a 400 names the first refused line (Telegraf does not resend a 400, so nothing
    // written is duplicated); 204 only when every line was taken.
    const influx = (version: 1 | 2) => async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
      const q = (req.query ?? {}) as Record<string, unknown>;
      const param = (k: string) => (typeof q[k] === 'string' ? (q[k] as string) : undefined);
      const body = rawOf(req);
      const decoded = decodeLineProtocol(body.bytes, { precision: param('precision'), app: version === 2 ? param('bucket') : param('db') }, { now: Date.now(), maxEntries: deps.maxEntries });
      const outcome = await ingestDecoded(req, decoded, body.bytes.byteLength);
      if (outcome.rejected.length === 0 && outcome.accepted > 0) return reply.code(204).send();
      const err = outcome.accepted === 0 ? noneAccepted(outcome) : partialWrite(outcome, 'line');
      return sendError(reply, err, () => ({ contentType: 'application/json', body: influxError(err, outcome.rejected[0]?.item) }));
    };
    p.post('/api/v2/write', influx(2));
    p.post('/write', influx(1));

    // Loki push: JSON or snappy-compressed protobuf. 204 when every entry was taken.
    p.post('/loki/api/v1/push', async (req, reply) => {
      const encoding = lokiEncoding(req.headers['content-type']);
      if (encoding === undefined) throw unsupportedType(req, 'application/json or application/x-protobuf (snappy-compressed)');
      const body = rawOf(req);
      const decoded = decodeLokiPush(body.bytes, encoding, { now: Date.now(), maxEntries: deps.maxEntries, maxBytes: deps.bodyLimitBytes, parseJson: parseBounded });
      return answerNoContent(reply, await ingestDecoded(req, decoded, body.bytes.byteLength), 'entry');
    });

    // Prometheus remote write 1.0: snappy-compressed prometheus.WriteRequest. 204 when every
    // sample was taken (staleness markers and NaN are skipped and counted, not refused).
    p.post('/api/v1/push', async (req, reply) => {
      const ct = String(req.headers['content-type'] ?? '');
      // 2.0 announces itself in the content type (proto=io.prometheus.write.v2.Request); its message is another one.
      if (!/^application\/x-protobuf\s*(;\s*proto=prometheus\.WriteRequest\s*)?$/i.test(ct.trim())) throw unsupportedType(req, 'application/x-protobuf (remote write 1.0, snappy-compressed prometheus.WriteRequest)');
      const body = rawOf(req);
      const decoded = decodeRemoteWrite(body.bytes, { now: Date.now(), maxEntries: deps.maxEntries, maxBytes: deps.bodyLimitBytes });
      return answerNoContent(reply, await ingestDecoded(req, decoded, body.bytes.byteLength), 'sample');
    });

    // Plain JSON log objects (Vector's and Fluent Bit's http outputs): a JSON array or NDJSON,
    // whatever the content type says, answered like /v2/ingest.
    p.post('/v2/logs', async (req, reply): Promise<IngestResult | FastifyReply> => {
      const body = rawOf(req);
      const text = decodeUtf8(body.bytes);
      const limits = { maxBytes: deps.bodyLimitBytes, maxEntries: deps.maxEntries, maxDepth: deps.maxDepth };
      const values = text.trimStart().startsWith('[') ? parseEntries(text, 'json', limits) : ndjsonOrOneObject(text, limits);
      const decoded = plainLogsToEntries(values, { now: Date.now(), maxEntries: deps.maxEntries });
      const outcome = await ingestDecoded(req, decoded, body.bytes.byteLength);
      const result: IngestResult = { accepted: outcome.accepted, rejected: outcome.rejected.map((r) => ({ index: r.item, code: r.code, message: r.message })) };
      if (result.accepted === 0) return sendNoneAccepted(reply, result);
      return result;
    });
  });
}

/** GET/HEAD /ping as InfluxDB answers it: 204 with its version header. */
export function registerPing(app: FastifyInstance): void {
  const ping = async (_req: FastifyRequest, reply: FastifyReply) => reply.code(204).header('x-influxdb-version', INFLUX_VERSION).header('x-influxdb-build', 'OSS').send();
  app.get('/ping', ping);
  // fastify answers HEAD for a GET route by itself (exposeHeadRoutes), headers included.
}

/** The InfluxDB version the write API is compatible with, as /ping reports it. */
const INFLUX_VERSION = '2.7.0';

function rawOf(req: FastifyRequest): { bytes: Buffer } {
  const b = req.body as Buffer | undefined;
  return { bytes: b ?? Buffer.alloc(0) };
}

function unsupportedType(req: FastifyRequest, expected: string): IngestError {
  const got = String(req.headers['content-type'] ?? '(none)').slice(0, 64);
  return new IngestError('INGEST_ERR_UNSUPPORTED_MEDIA_TYPE', `content type ${got} is not accepted on ${req.routeOptions.url ?? 'this route'}; send ${expected}`);
}

/** The first few reasons, for messages that have room for one line (OTLP's error_message, Influx's message). */
export function summary(rejected: Outcome['rejected'], itemName: string): string {
  const shown = rejected.slice(0, 3).map((r) => `${itemName} ${r.item}: ${r.code}: ${r.message}`);
  const more = rejected.length > shown.length ? `; and ${rejected.length - shown.length} more` : '';
  return `${rejected.length} refused: ${shown.join('; ')}${more}`;
}

/** 400 INGEST_ERR_NO_VALID_ENTRIES with the per-entry reasons, in the shape of a 200's body plus the error. */
export function sendNoneAccepted(reply: FastifyReply, result: IngestResult): FastifyReply {
  const err = ingestError('INGEST_ERR_NO_VALID_ENTRIES', [result.rejected.length]);
  return sendError(reply, err, (e) => ({ contentType: 'application/json', body: { ...e.toBody(), accepted: 0, rejected: result.rejected } }));
}

/** NDJSON, or one (possibly pretty-printed) object. */
function ndjsonOrOneObject(text: string, limits: { maxBytes: number; maxEntries: number; maxDepth: number }): unknown[] {
  try {
    return parseEntries(text, 'ndjson', limits);
  } catch (e) {
    if (!(e instanceof IngestError) || e.code !== 'INGEST_ERR_INVALID_JSON' || !text.trimStart().startsWith('{')) throw e;
    try {
      return [parseBoundedJson(text, limits.maxDepth)];
    } catch {
      throw e;
    }
  }
}

/**
 * The answer of the protocols whose success is 204 with no body (Loki, remote write): 204 only
 * when every item was taken (or deliberately skipped); otherwise 400 with the reasons — as their
 * own servers answer, since they have no partial-success shape. What was taken stays taken.
 */
function answerNoContent(reply: FastifyReply, outcome: Outcome, itemName: string): FastifyReply {
  if (outcome.rejected.length === 0 && (outcome.accepted > 0 || outcome.skipped > 0)) return reply.code(204).send();
  const err = outcome.accepted === 0 ? noneAccepted(outcome) : partialWrite(outcome, itemName);
  const rejected = outcome.rejected.slice(0, MAX_LISTED).map((r) => ({ index: r.item, code: r.code, message: r.message }));
  return sendError(reply, err, (e) => ({ contentType: 'application/json', body: { ...e.toBody(), accepted: outcome.accepted, rejected } }));
}

/** At most this many refused items are listed in a 400 (all are counted and, past the edge, dead-lettered). */
const MAX_LISTED = 1000;

function partialWrite(outcome: Outcome, itemName: string): IngestError {
  return ingestError('INGEST_ERR_PARTIAL_WRITE', [`${outcome.accepted} ${itemName === 'line' ? 'points' : `${itemName === 'entry' ? 'entries' : 'samples'}`}`, summary(outcome.rejected, itemName).slice(0, 1000)]);
}

/** Nothing of the request was taken: never a 2xx. */
function noneAccepted(outcome: Outcome): IngestError {
  if (outcome.rejected.length === 0) return ingestError('INGEST_ERR_EMPTY_BATCH');
  const base = ingestError('INGEST_ERR_NO_VALID_ENTRIES', [outcome.rejected.length]);
  return new IngestError('INGEST_ERR_NO_VALID_ENTRIES', `${base.message}: ${summary(outcome.rejected, 'item').slice(0, 1000)}`);
}

/** Each protocol's error shape, by the route the router matched. */
function renderFor(req: FastifyRequest): ((err: IngestError) => { contentType: string; body: unknown }) | undefined {
  const route = req.routeOptions.url ?? '';
  if (OTLP_ROUTES[route] !== undefined) {
    // The spec: the answer in the request's encoding (JSON for anything that is not protobuf).
    const encoding: OtlpEncoding = otlpEncoding(req.headers['content-type']) ?? 'json';
    return (err) => otlpStatus(encoding, err.statusCode, err.code, err.message);
  }
  if (route === '/api/v2/write' || route === '/write') return (err) => ({ contentType: 'application/json', body: influxError(err) });
  return undefined;
}

/** Influx's error codes by HTTP status (its `code` field), which its clients print. */
const INFLUX_CODES: Record<number, string> = { 400: 'invalid', 401: 'unauthorized', 404: 'not found', 408: 'invalid', 413: 'request too large', 415: 'invalid', 429: 'too many requests', 503: 'unavailable' };

/** Influx's error body, with the INGEST_ERR_ code leading the message (and the first refused line, when there is one). */
function influxError(err: IngestError, line?: number): Record<string, unknown> {
  return { code: INFLUX_CODES[err.statusCode] ?? 'internal error', message: `${err.code}: ${err.message}`, ...(line !== undefined ? { line } : {}) };
}
