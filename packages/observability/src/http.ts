import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { timingSafeEqual } from 'node:crypto';
import type { Socket } from 'node:net';
import { HEADERS, IngestError, ingestError, type ErrorBody } from '@ingest/contracts';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, propagation, trace, type Attributes, type Span, type Tracer } from '@opentelemetry/api';
import type { ServiceMetrics } from './metrics.ts';
import { tracerProviderRegistered } from './tracing.ts';

export interface Readiness {
  ready: boolean;
  /** Named checks shown in /readyz, e.g. { log: 'ok', clickhouse: 'connect ECONNREFUSED' }. */
  checks: Record<string, string>;
}

export interface ServiceBasicsOptions {
  service: string;
  metrics: ServiceMetrics;
  readiness: () => Promise<Readiness> | Readiness;
  /** Extra status for `ingestctl status` (budget use, lag...). */
  status?: () => Promise<Record<string, unknown>> | Record<string, unknown>;
  /**
   * When set, every route whose pattern is under /internal/ or /admin/ requires it in
   * x-ingest-internal-token, checked on the route the router matched (not on the raw URL).
   */
  internalToken?: string | undefined;
  /** The authenticated tenant of a request, for metric labels ('-' when there is none). */
  tenantOf?: (req: FastifyRequest) => string | undefined;
}

const ERROR_CODE = Symbol('ingestErrorCode');
type CodedReply = FastifyReply & { [ERROR_CODE]?: string };

/** Maps any error a route or fastify raises to the catalog's IngestError. */
export function toIngestError(err: unknown): IngestError {
  if (err instanceof IngestError) return err;
  const e = err as Partial<FastifyError> & { message?: string };
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return ingestError('INGEST_ERR_BODY_TOO_LARGE', ['the configured limit']);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return ingestError('INGEST_ERR_UNSUPPORTED_MEDIA_TYPE', ['(given)']);
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return ingestError('INGEST_ERR_INVALID_BODY', ['the body is empty']);
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return ingestError('INGEST_ERR_INVALID_JSON', [e.message ?? '']);
    case 'FST_ERR_BAD_URL':
      return ingestError('INGEST_ERR_MALFORMED_REQUEST', ['the URL has invalid percent-encoding']);
    default:
      break;
  }
  if (typeof e.message === 'string' && /forbidden prototype property|forbidden constructor property/i.test(e.message)) {
    return ingestError('INGEST_ERR_FORBIDDEN_KEY', [e.message.includes('constructor') ? 'constructor' : '__proto__']);
  }
  if (err instanceof SyntaxError) return ingestError('INGEST_ERR_INVALID_JSON', [err.message]);
  if (e.statusCode === 404) return ingestError('INGEST_ERR_NOT_FOUND', ['']);
  return ingestError('INGEST_ERR_INTERNAL', [e.message ?? 'unknown'], { cause: err });
}

/**
 * Answers with the error's status, Retry-After and headers. `render` gives the body in another
 * shape (a protocol's own error message: OTLP's google.rpc.Status, Influx's JSON error) instead of
 * the ErrorBody; the code is counted the same either way.
 */
export function sendError(reply: FastifyReply, err: IngestError, render?: (err: IngestError) => { contentType: string; body: unknown }): FastifyReply {
  (reply as CodedReply)[ERROR_CODE] = err.code;
  if (err.retryAfterSeconds !== undefined) void reply.header('retry-after', String(err.retryAfterSeconds));
  for (const [k, v] of Object.entries(err.headers)) void reply.header(k, v);
  if (render) {
    const r = render(err);
    return reply.code(err.statusCode).type(r.contentType).send(r.body);
  }
  const body: ErrorBody = err.toBody();
  return reply.code(err.statusCode).type('application/json').send(body);
}

/**
 * Health, readiness, metrics, status, request metrics and the error handler — identical on every
 * service so on-call finds the same endpoints everywhere.
 */
export function installServiceBasics(app: FastifyInstance, opts: ServiceBasicsOptions): void {
  const { metrics } = opts;
  // First, so the span also covers requests refused by any later onRequest hook.
  installTracing(app, opts);

  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    metrics.requests.inc({ route, status: String(reply.statusCode) });
    metrics.requestDuration.observe({ route }, reply.elapsedTime / 1000);
    const code = (reply as CodedReply)[ERROR_CODE];
    if (code) metrics.rejectedRequests.inc({ tenant: opts.tenantOf?.(req) ?? '-', reason: code });
  });

  app.setErrorHandler((err, req, reply) => {
    const ie = toIngestError(err);
    if (ie.statusCode >= 500 && ie.code === 'INGEST_ERR_INTERNAL') req.log.error({ err }, 'unhandled error');
    return sendError(reply, ie);
  });

  app.setNotFoundHandler((req, reply) => sendError(reply, ingestError('INGEST_ERR_NOT_FOUND', [`${req.method} ${req.url.slice(0, 100)}`])));

  const expected = opts.internalToken ? Buffer.from(opts.internalToken) : undefined;
  if (expected) {
    app.addHook('onRequest', async (req) => {
      // The pattern the router matched, not req.url: the router decodes and may match spellings
      // (%69nternal, absolute-form targets...) that a prefix test on the raw URL never sees.
      const route = req.routeOptions.url;
      if (route === undefined || !isProtectedRoute(route)) return;
      const got = req.headers[HEADERS.internalToken];
      const given = Buffer.from(typeof got === 'string' ? got : '');
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw ingestError('INGEST_ERR_INTERNAL_UNAUTHENTICATED');
    });
  }

  // pid lets a supervisor tell its own child from a stray process that holds the port.
  app.get('/healthz', async () => ({ status: 'ok', service: opts.service, pid: process.pid }));

  app.get('/readyz', async (_req, reply) => {
    const r = await opts.readiness();
    return reply.code(r.ready ? 200 : 503).send({ ready: r.ready, service: opts.service, checks: r.checks });
  });

  // Metrics and status name tenants, so they are served on a listener of their own (loopback by
  // default), never on the public port; main.ts listens on it, closing the app closes it.
  const admin = Fastify({ logger: false, ...protocolErrorOptions });
  admin.setErrorHandler((err, _req, reply) => sendError(reply, toIngestError(err)));
  admin.setNotFoundHandler((req, reply) => sendError(reply, ingestError('INGEST_ERR_NOT_FOUND', [`${req.method} ${req.url.slice(0, 100)}`])));
  admin.get('/healthz', async () => ({ status: 'ok', service: opts.service, pid: process.pid }));
  admin.get('/metrics', async (_req, reply) => {
    const text = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(text);
  });
  admin.get('/status', async () => ({ service: opts.service, ...(opts.status ? await opts.status() : {}) }));
  (app as AdminCarrier)[ADMIN] = admin;
  let adminClosed: Promise<void> | undefined;
  app.addHook('onClose', async () => {
    adminClosed ??= admin.close();
    await adminClosed;
  });
}

const ADMIN = Symbol('adminListener');
type AdminCarrier = FastifyInstance & { [ADMIN]?: FastifyInstance };

/**
 * The admin listener of a service built with installServiceBasics: /metrics, /status (and
 * /healthz, so a supervisor can tell it is up). Only main.ts (or a test) listens on it.
 */
export function adminListener(app: FastifyInstance): FastifyInstance {
  const admin = (app as AdminCarrier)[ADMIN];
  if (admin === undefined) throw new Error('adminListener: the app was not built with installServiceBasics');
  return admin;
}

/** Internal and admin route patterns; case-insensitive, so a router with caseSensitive: false can't dodge it. */
export function isProtectedRoute(route: string): boolean {
  return /^\/+(internal|admin)(\/|$)/i.test(route);
}

/**
 * fastify's `clientErrorHandler`: what Node's HTTP parser refuses (bad framing, oversized or
 * CR/LF-laden headers, bad chunks, a request too slow to arrive) never reaches a route, so it is
 * answered here — with the same error body and a catalog code as everything else.
 */
export function clientErrorHandler(this: FastifyInstance, err: NodeJS.ErrnoException, socket: Socket): void {
  // A reset or already-destroyed socket has nobody left to answer.
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const ie = clientErrorOf(err.code);
  this.log.debug({ err }, `client error answered with ${ie.code}`);
  // A response already under way on this socket (headers sent) must not get a second status line.
  const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (socket.writable && !inFlight?.headersSent) {
    const body = JSON.stringify(ie.toBody());
    socket.write(
      `HTTP/1.1 ${ie.statusCode} ${STATUS_TEXT[ie.statusCode] ?? 'Bad Request'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}

/**
 * Server options every service's fastify factory spreads: what Node's parser or fastify's router
 * refuse before any route or error handler runs (bad framing, a URL that does not decode) is
 * answered with the catalog's error body too, not fastify's own.
 */
export const protocolErrorOptions = {
  clientErrorHandler,
  frameworkErrors: (err: FastifyError, _req: FastifyRequest, reply: FastifyReply): void => {
    void sendError(reply, toIngestError(err));
  },
} as const;

const STATUS_TEXT: Readonly<Record<number, string>> = { 400: 'Bad Request', 408: 'Request Timeout', 413: 'Payload Too Large', 431: 'Request Header Fields Too Large' };

/** Node's parser error codes (llhttp HPE_*, and its own timeouts) to catalog codes. */
export function clientErrorOf(code: string | undefined): IngestError {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return ingestError('INGEST_ERR_HEADERS_TOO_LARGE');
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return ingestError('INGEST_ERR_CHUNK_EXTENSIONS_TOO_LARGE');
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return ingestError('INGEST_ERR_REQUEST_TIMEOUT');
    default:
      return ingestError('INGEST_ERR_MALFORMED_REQUEST', [(code ?? 'unknown').slice(0, 64)]);
  }
}

/** Polled, not served: a span per probe or scrape would only be noise. */
const UNTRACED_ROUTES: ReadonlySet<string> = new Set(['/healthz', '/readyz', '/metrics', '/status']);
const SERVER_SPAN = Symbol('serverSpan');
const TRACER = Symbol('tracer');
type TracedRequest = FastifyRequest & { [SERVER_SPAN]?: Span | undefined };
type TracedServer = FastifyInstance & { [TRACER]?: Tracer };
const NO_TRACE_HEADERS: Readonly<Record<string, string>> = Object.freeze({});

/**
 * A SERVER span per request, child of the caller's traceparent. Decided once, when the app is
 * built: with no tracer provider registered (startTracing without an endpoint) no hook is added,
 * so an untraced service pays nothing per request.
 */
function installTracing(app: FastifyInstance, opts: ServiceBasicsOptions): void {
  if (!tracerProviderRegistered()) return;
  const tracer = trace.getTracer(opts.service);
  app.decorate(TRACER, tracer);
  // Declared up front so every request object keeps one shape.
  app.decorateRequest(SERVER_SPAN, undefined);

  app.addHook('onRequest', (req, _reply, done) => {
    const route = req.routeOptions.url;
    if (route === undefined || !UNTRACED_ROUTES.has(route)) {
      const method = req.method;
      const attributes: Attributes = { 'http.request.method': method };
      if (route !== undefined) attributes['http.route'] = route;
      const parent = propagation.extract(ROOT_CONTEXT, req.headers);
      (req as TracedRequest)[SERVER_SPAN] = tracer.startSpan(route === undefined ? method : `${method} ${route}`, { kind: SpanKind.SERVER, attributes }, parent);
    }
    done();
  });
  app.addHook('onResponse', (req, reply, done) => {
    endServerSpan(req, reply, opts);
    done();
  });
  // A client that hangs up may never see a response, and then onResponse never runs.
  app.addHook('onRequestAbort', (req, done) => {
    endServerSpan(req, undefined, opts);
    done();
  });
}

function endServerSpan(req: FastifyRequest, reply: FastifyReply | undefined, opts: ServiceBasicsOptions): void {
  const span = (req as TracedRequest)[SERVER_SPAN];
  // Not recording: unsampled, or already ended by an abort that a late response follows.
  if (span === undefined || !span.isRecording()) return;
  const tenant = opts.tenantOf?.(req);
  if (tenant !== undefined) span.setAttribute('ingest.tenant', tenant);
  if (reply === undefined) {
    span.setAttribute('ingest.client_aborted', true);
  } else {
    const status = reply.statusCode;
    span.setAttribute('http.response.status_code', status);
    const code = (reply as CodedReply)[ERROR_CODE];
    if (code) span.setAttribute('ingest.error.code', code);
    // Server spans are errors only for 5xx: a 4xx is the caller's mistake, not this service's.
    if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR, message: code ?? String(status) });
  }
  span.end();
}

/**
 * The trace headers for the next hop: this service's server span as the parent, so the hop below
 * is its child rather than a sibling under the producer's span. Without tracing, the caller's
 * traceparent is passed on as received, so the trace id still reaches the log headers.
 */
export function traceHeaders(req: FastifyRequest): Readonly<Record<string, string>> {
  const span = (req as TracedRequest)[SERVER_SPAN];
  if (span !== undefined) {
    const out: Record<string, string> = {};
    propagation.inject(trace.setSpan(ROOT_CONTEXT, span), out);
    if (out[HEADERS.traceparent] !== undefined) return out;
  }
  const incoming = req.headers[HEADERS.traceparent];
  return typeof incoming === 'string' ? { [HEADERS.traceparent]: incoming } : NO_TRACE_HEADERS;
}

/**
 * Times `work` as a child span of the request's server span (e.g. the sink writer's log append).
 * When the request is not traced, returns `work` itself.
 */
export function traceChild<T>(req: FastifyRequest, name: string, work: Promise<T>, attributes?: Attributes): Promise<T> {
  const parent = (req as TracedRequest)[SERVER_SPAN];
  const tracer = (req.server as TracedServer)[TRACER];
  if (parent === undefined || tracer === undefined || !parent.isRecording()) return work;
  const span = tracer.startSpan(name, attributes ? { attributes } : {}, trace.setSpan(ROOT_CONTEXT, parent));
  return endWith(span, work);
}

/**
 * Runs a stage called in the same process (no HTTP request, so no server span) as a span of its
 * own under the caller's trace context, and gives `work` the headers naming that span, for the
 * next stage and the log. Untraced, `work` gets the caller's headers and nothing is recorded.
 */
export function traceStage<T>(app: FastifyInstance, name: string, incoming: Readonly<Record<string, string>>, work: (trace: Readonly<Record<string, string>>) => Promise<T>, attributes?: Attributes): Promise<T> {
  const tracer = (app as TracedServer)[TRACER];
  if (tracer === undefined) return work(incoming);
  const span = tracer.startSpan(name, { kind: SpanKind.INTERNAL, ...(attributes ? { attributes } : {}) }, propagation.extract(ROOT_CONTEXT, incoming));
  const out: Record<string, string> = {};
  propagation.inject(trace.setSpan(ROOT_CONTEXT, span), out);
  return endWith(span, work(out[HEADERS.traceparent] !== undefined ? out : incoming));
}

/**
 * Times `work` as a child of the span the trace headers name (a request's server span, or a
 * stage's span in one process). Untraced, returns `work` itself.
 */
export function traceUnder<T>(app: FastifyInstance, traceContext: Readonly<Record<string, string>>, name: string, work: Promise<T>, attributes?: Attributes): Promise<T> {
  const tracer = (app as TracedServer)[TRACER];
  if (tracer === undefined || traceContext[HEADERS.traceparent] === undefined) return work;
  const span = tracer.startSpan(name, attributes ? { attributes } : {}, propagation.extract(ROOT_CONTEXT, traceContext));
  return endWith(span, work);
}

function endWith<T>(span: Span, work: Promise<T>): Promise<T> {
  return work.then(
    (v) => {
      span.end();
      return v;
    },
    (e: unknown) => {
      span.setStatus({ code: SpanStatusCode.ERROR, message: e instanceof Error ? e.message : String(e) });
      span.end();
      throw e;
    },
  );
}
