import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import type { Redis } from 'ioredis';
import { HEADERS, IngestError, ingestError, type IngestResult, type NormalizeHop, type NormalizeRequest, type QueryHop } from '@ingest/contracts';
import type { EdgeConfig } from '@ingest/config';
import { FairBudget, retryAfterSeconds, type Lease } from '@ingest/queue';
import { createServiceMetrics, protocolErrorOptions, installServiceBasics, serverLogOptions, type LoggingOptions, traceHeaders } from '@ingest/observability';
import { KeyIndex, credentialFor, type Principal } from './auth/key-index.ts';
import { AuthFailureLimiter } from './auth/failure-limiter.ts';
import { decodeUtf8, formatOf, parseEntries, readBody, type ParsedBody } from './body/read-body.ts';
import { registerPing, registerProtocolRoutes, sendNoneAccepted } from './protocols/routes.ts';
import { BodyMeter } from './body/body-meter.ts';
import { registerQueryRoute } from './query/route.ts';
import { MemoryRateStore, type RateStore, type TakeResult } from './rate/rate-store.ts';
import { RedisRateStore } from './rate/redis-rate-store.ts';
import { CutoverGate, type CutoverOptions } from './cutover/gate.ts';
import { Counter, Gauge } from 'prom-client';
import { ConnectionGuard } from './net/connection-guard.ts';
import { effectiveMaxConnections, readOpenFileLimit } from './net/open-files.ts';
import { ThrottledLog } from './net/throttled-log.ts';
import { TrustedHops } from './cutover/trusted-hop.ts';
import { HttpNormalizeHop, HttpQueryHop, readTlsMaterial, TlsReloader, type SecureContextTarget } from '@ingest/internal-http';

export interface EdgeOptions {
  config: EdgeConfig;
  /** When given, request and entry/byte rates are shared by every edge replica through Redis. */
  redis?: Redis;
  /** false for tests that want quiet output. */
  logger?: boolean;
  logging?: LoggingOptions;
  /** How often the tenants file is checked for changes (ms). */
  tenantsReloadMs?: number;
  /** Overrides config.cutover (tests point it at their own files and fixtures). */
  cutover?: CutoverOptions;
  /** The normalizer in this process (one-process topology); otherwise reached over HTTP at config.normalizerUrl. */
  normalizer?: NormalizeHop;
  /** The sink writer's reads in this process (one-process topology); otherwise reached over HTTP at config.sinkUrl. */
  query?: QueryHop;
  /** The process's open-file limit; read from /proc/self/limits when not given (null: unknown). */
  openFileLimit?: number | null;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | undefined;
    /** The request's share of the in-flight budget: grows as the body is read, then holds its parsed size. */
    lease: Lease | undefined;
  }
}

const INGEST_CONTENT_TYPES = ['application/json', 'application/x-ndjson', 'application/ndjson', 'application/jsonl'];

export async function buildEdge(opts: EdgeOptions): Promise<FastifyInstance> {
  const cfg = opts.config;
  const httpOptions = { headersTimeout: cfg.headersTimeoutMs, requestTimeout: cfg.requestTimeoutMs, connectionsCheckingInterval: Math.min(CONNECTIONS_CHECK_MS, Math.ceil(cfg.headersTimeoutMs / 2)) };
  // HTTPS: fastify hands `https` (not `http`) to the server it creates, so the socket deadlines ride
  // in it too. HTTP/2 offers HTTP/1.1 as well (ALPN), for clients that only speak that; an idle
  // HTTP/2 session is closed like an idle keep-alive connection, so a drain does not wait on it.
  const tls = cfg.tls ? readTlsMaterial(cfg.tls) : undefined;
  const transport = tls
    ? { https: { ...httpOptions, ...tls, ...(cfg.tls?.http2 ? { allowHTTP1: true } : {}) }, http2: cfg.tls?.http2 === true, http2SessionTimeout: cfg.keepAliveTimeoutMs }
    : { http: httpOptions };
  // The instance type does not depend on the transport for anything the edge uses; fastify's
  // overloads would make it a different generic type per transport.
  const app = (Fastify as unknown as (o: object) => FastifyInstance)({
    ...serverLogOptions('edge', opts.logging, opts.logger !== false),
    // The decompressed limit is enforced by readBody; this bounds everything else.
    bodyLimit: cfg.bodyLimitBytes,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    // What Node's parser or the router refuse is answered with a catalog code too.
    ...protocolErrorOptions,
    // Our onRequest hook answers requests that arrive while draining, with a code and Retry-After.
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    // Every socket has a deadline (Node's and fastify's defaults are minutes, or none): a client
    // that connects and says nothing, trickles headers, trickles a body or idles between requests
    // is cut in seconds. Node checks the headers and request deadlines on an interval (30 s by
    // default), so it is made short enough for the deadlines to mean what they say.
    connectionTimeout: cfg.connectionTimeoutMs,
    keepAliveTimeout: cfg.keepAliveTimeoutMs,
    requestTimeout: cfg.requestTimeoutMs,
    ...transport,
  });
  if (cfg.tls) {
    const tlsLog = new ThrottledLog(60_000, (fields, suppressed) => app.log.warn({ ...fields, suppressed }, 'TLS certificate change not applied; still serving the previous one'));
    const reloader = new TlsReloader(cfg.tls, app.server as unknown as SecureContextTarget, {
      reloaded: () => app.log.info({ certFile: cfg.tls?.certFile }, 'TLS certificate reloaded'),
      failed: (err) => tlsLog.event({ err: err.message }),
    });
    reloader.start();
    app.addHook('onClose', async () => reloader.stop());
  }
  const metrics = createServiceMetrics('edge', { defaultMetrics: opts.logger !== false });
  const keys = new KeyIndex(cfg.tenantsFile, opts.tenantsReloadMs ?? 1000);
  await keys.start();
  const cutover = new CutoverGate(opts.cutover ?? cutoverFromConfig(cfg), { timeoutMs: cfg.downstreamTimeoutMs, maxBodyBytes: cfg.bodyLimitBytes }, metrics);
  await cutover.start();
  const rates: RateStore = opts.redis ? new RedisRateStore(opts.redis) : new MemoryRateStore();
  const budget = new FairBudget({ maxBytes: cfg.inflightBytes, maxEntries: cfg.inflightEntries });
  let httpNormalizer: HttpNormalizeHop | undefined;
  const normalizer: NormalizeHop = opts.normalizer ?? (httpNormalizer = new HttpNormalizeHop(cfg.normalizerUrl, { name: 'normalizer', timeoutMs: cfg.downstreamTimeoutMs, overloadedCode: 'INGEST_ERR_NORMALIZER_OVERLOADED', internalToken: cfg.internalToken, caFile: cfg.hopCaFile }));
  let httpQuery: HttpQueryHop | undefined;
  const queryHop: QueryHop = opts.query ?? (httpQuery = new HttpQueryHop(cfg.sinkUrl, { name: 'sink-writer', timeoutMs: cfg.downstreamTimeoutMs, overloadedCode: 'INGEST_ERR_SINK_OVERLOADED', internalToken: cfg.internalToken, caFile: cfg.hopCaFile }));
  let closing = false;

  const openFileLimit = opts.openFileLimit === undefined ? readOpenFileLimit() : (opts.openFileLimit ?? undefined);
  const maxConnections = effectiveMaxConnections(cfg.maxConnections, openFileLimit);
  const skippedItems = new Counter({ name: 'ingest_skipped_items_total', help: 'Protocol items left out on purpose, not errors (remote-write staleness markers and NaN samples), by tenant and reason', labelNames: ['tenant', 'reason'], registers: [metrics.registry] });
  const refusedConnections = new Counter({ name: 'ingest_edge_connections_refused_total', help: 'Inbound connections closed on arrival, by reason (max_connections, per_address)', labelNames: ['reason'], registers: [metrics.registry] });
  const refusedLog = new ThrottledLog(10_000, (fields, suppressed) => app.log.warn({ ...fields, suppressed, refused: guard.snapshot().refused }, 'connection refused'));
  const guard = new ConnectionGuard({ maxConnections, maxPerAddress: cfg.maxConnectionsPerAddress }, (reason, address) => {
    refusedConnections.inc({ reason });
    refusedLog.event({ reason, address });
  });
  guard.attach(app.server);
  new Gauge({ name: 'ingest_edge_open_connections', help: 'Inbound connections open now', registers: [metrics.registry], collect() { this.set(guard.snapshot().open); } });
  const connectionLimits = { openFileLimit: openFileLimit ?? null, maxConnections, configuredMaxConnections: cfg.maxConnections, maxPerAddress: cfg.maxConnectionsPerAddress };
  if (maxConnections < cfg.maxConnections) app.log.warn(connectionLimits, 'EDGE_MAX_CONNECTIONS lowered to stay well below the open-file limit');
  else app.log.info(connectionLimits, 'connection limits');
  /** Bodies being read now (bounded by open connections), so a drain can cut what is left. */
  const readingBodies = new Set<BodyMeter>();

  installServiceBasics(app, {
    service: 'edge',
    metrics,
    internalToken: cfg.internalToken,
    readiness: () => ({
      ready: !closing && keys.lastError === undefined,
      checks: { tenants: keys.lastError ?? `ok (${keys.tenantCount()} tenants)` },
    }),
    status: async () => ({ budget: budget.snapshot(), tenants: keys.tenantCount(), cutover: await cutover.snapshot(), connections: { ...guard.snapshot(), openFileLimit: openFileLimit ?? null }, readingBodies: readingBodies.size }),
    tenantOf: (req) => req.principal?.tenant,
  });

  app.decorateRequest('principal', undefined);
  app.decorateRequest('lease', undefined);

  // Before any other hook reads them: routing headers count only from the load balancer.
  const hops = new TrustedHops(cfg.trustedHops);
  app.addHook('onRequest', async (req) => {
    hops.scrub(req);
  });

  const discard = (tenant: string, code: string, n: number) => metrics.discarded.inc({ tenant, reason: code }, n);

  const authFailures = new AuthFailureLimiter({ maxFailures: cfg.authFailureLimit, windowMs: cfg.authFailureWindowMs, maxAddresses: cfg.authFailureAddresses });
  const blockedLog = new ThrottledLog(10_000, (fields, suppressed) => app.log.warn({ ...fields, suppressed, limit: cfg.authFailureLimit, windowMs: cfg.authFailureWindowMs }, 'address refused after too many failed authentications'));
  const authFailed = (req: FastifyRequest, code: 'INGEST_ERR_UNAUTHENTICATED' | 'INGEST_ERR_INVALID_API_KEY'): IngestError => {
    if (authFailures.fail(req.ip)) blockedLog.event({ address: req.ip });
    return ingestError(code);
  };

  await app.register(async (scope) => {
    scope.addHook('onRequest', async (req, reply) => {
      if (closing) throw ingestError('INGEST_ERR_SHUTTING_DOWN', [], { retryAfterSeconds: 1 });
      const wait = authFailures.retryAfterSeconds(req.ip);
      if (wait > 0) throw ingestError('INGEST_ERR_TOO_MANY_AUTH_FAILURES', [wait], { retryAfterSeconds: wait });
      // Influx clients send the key their own ways, accepted only on their routes (by matched route).
      const token = credentialFor(req.routeOptions.url, req.headers.authorization, req.query);
      if (!token) throw authFailed(req, 'INGEST_ERR_UNAUTHENTICATED');
      const p = keys.authenticate(token);
      if (!p) throw authFailed(req, 'INGEST_ERR_INVALID_API_KEY');
      // The tenant comes from the key alone; any tenant named in headers or body is ignored.
      req.principal = p;
      // Tenants not cut over go to legacy whole, before rate limits or body parsing touch them.
      if (await cutover.divert(req, reply, p.tenant)) return reply;
    });

    await scope.register(rateLimit, {
      global: true,
      hook: 'onRequest',
      timeWindow: 1000,
      enableDraftSpec: true,
      // Redis down must not become a 500: the entry/byte buckets below then answer 503 instead.
      skipOnError: true,
      ...(opts.redis ? { redis: opts.redis, nameSpace: 'ingest:req:' } : {}),
      keyGenerator: (req: FastifyRequest) => req.principal?.tenant ?? 'anonymous',
      max: (req: FastifyRequest) => req.principal?.limits.requestsPerSecond ?? cfg.defaultRequestsPerSecond,
      errorResponseBuilder: (req: FastifyRequest, ctx: { ttl: number }) => {
        const tenant = req.principal?.tenant ?? 'anonymous';
        const secs = Math.max(1, Math.ceil(ctx.ttl / 1000));
        return ingestError('INGEST_ERR_TENANT_REQUEST_RATE', [tenant, secs], { retryAfterSeconds: secs });
      },
    });

    // Bodies being read count against the budget too, for what has arrived so far: admission
    // takes a small reservation (the fair-share check happens here, before anything is read) and
    // the lease grows chunk by chunk in the parser. Reserving the declared size, or the whole
    // limit for a chunked body, let a handful of trickling uploads hold the budget while holding
    // almost no memory.
    scope.addHook('preParsing', async (req, _reply, payload) => {
      const tenant = req.principal?.tenant;
      // A read (GET /v2/query) has no body: it holds none of the ingest budget.
      if (!tenant || req.method === 'GET') return payload;
      const declared = Number(req.headers['content-length']);
      const bytes = Number.isFinite(declared) && declared >= 0 ? Math.min(declared, READ_STEP_BYTES) : READ_STEP_BYTES;
      const got = budget.tryAcquire(tenant, bytes, 0);
      if (!got.ok) throw edgeOverloaded();
      req.lease = got.lease;
      // A body slower than the floor is cut with 408 long before Node's request timeout.
      const meter = new BodyMeter(payload, { minBytesPerSecond: cfg.minBodyBytesPerSecond, graceMs: cfg.bodyGraceMs });
      readingBodies.add(meter);
      meter.once('close', () => readingBodies.delete(meter));
      return meter;
    });
    // An answer sent before the body was read whole (refused at admission, cut, too large) ends
    // the connection: the rest of the body is not worth reading, and a client still trickling it
    // would otherwise hold the socket until the request timeout.
    scope.addHook('onSend', async (req, reply) => {
      if (!req.raw.complete) void reply.header('connection', 'close');
    });
    // Backstop for requests whose body is never parsed (refused content type, early errors).
    scope.addHook('onResponse', async (req) => {
      req.lease?.release();
    });

    /**
     * Reads a body whole (decompressed per `encoding`), charging the request's lease as it grows.
     * Shared by the native parser below and the protocol routes' raw-bytes parser.
     */
    const readCharged = async (req: FastifyRequest, payload: NodeJS.ReadableStream, encoding: string | undefined): Promise<Buffer> => {
      const lease = req.lease;
      // Grows the lease ahead of what was read, a step at a time: one budget check per step,
      // never more than a step held beyond the bytes actually buffered.
      const charge = (total: number) => {
        if (!lease || total <= lease.bytes) return;
        const want = Math.min(Math.ceil(total / READ_STEP_BYTES) * READ_STEP_BYTES, cfg.bodyLimitBytes);
        if (!lease.tryResize(Math.max(want, total), 0).ok) throw edgeOverloaded();
      };
      try {
        return await readBody(payload as unknown as import('node:stream').Readable, encoding, cfg.bodyLimitBytes, charge);
      } catch (e) {
        // Failed or abandoned by the client: nothing of it is held any longer.
        lease?.release();
        throw e;
      }
    };

    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser(INGEST_CONTENT_TYPES, async (req: FastifyRequest, payload: NodeJS.ReadableStream): Promise<ParsedBody> => {
      const format = formatOf(req.headers['content-type']) ?? 'json';
      const lease = req.lease;
      const raw = await readCharged(req, payload, req.headers['content-encoding']);
      try {
        const text = decodeUtf8(raw);
        const seen = { bigNumber: false };
        const entries = parseEntries(text, format, { maxBytes: cfg.bodyLimitBytes, maxEntries: cfg.maxEntriesPerRequest, maxDepth: cfg.maxNestingDepth }, seen);
        return { entries, bytes: raw.byteLength, bigNumbers: seen.bigNumber };
      } catch (e) {
        // Failed or abandoned by the client: nothing of it is held any longer. A parsed body keeps
        // its lease for the route.
        lease?.release();
        throw e;
      }
    });
    scope.addContentTypeParser('*', (req: FastifyRequest, _payload: unknown, done: (err: Error | null) => void) => {
      done(ingestError('INGEST_ERR_UNSUPPORTED_MEDIA_TYPE', [String(req.headers['content-type'] ?? '(none)').slice(0, 64)]));
    });

    /**
     * Everything after the body is decoded, shared by every ingest route (the native format and
     * the protocols producers already speak): rate accounting, the request's budget hold, the
     * normalizer. `body.entries` are entries in the native shape, not yet validated.
     */
    const ingestParsed = async (req: FastifyRequest, body: ParsedBody): Promise<IngestResult> => {
      const principal = req.principal;
      if (!principal) throw ingestError('INGEST_ERR_UNAUTHENTICATED');
      const { tenant, limits } = principal;
      const n = body.entries.length;

      const eps = limits.entriesPerSecond ?? cfg.defaultEntriesPerSecond;
      const entryRate = await takeOr503(rates, `e:${tenant}`, n, eps);
      if (!entryRate.ok) {
        discard(tenant, 'INGEST_ERR_TENANT_ENTRY_RATE', n);
        throw rateLimited('INGEST_ERR_TENANT_ENTRY_RATE', tenant, eps, entryRate);
      }
      const bps = limits.bytesPerSecond ?? cfg.defaultBytesPerSecond;
      const byteRate = await takeOr503(rates, `b:${tenant}`, body.bytes, bps);
      if (!byteRate.ok) {
        discard(tenant, 'INGEST_ERR_TENANT_BYTE_RATE', n);
        throw rateLimited('INGEST_ERR_TENANT_BYTE_RATE', tenant, bps, byteRate);
      }

      // The read lease becomes the request's hold: exactly the decompressed size, plus its entries.
      const lease = req.lease;
      if (!lease?.tryResize(body.bytes, n).ok) {
        discard(tenant, 'INGEST_ERR_EDGE_OVERLOADED', n);
        throw edgeOverloaded();
      }
      metrics.inflightBytes.inc(body.bytes);
      metrics.inflightEntries.inc(n);
      try {
        const version = String(req.headers[HEADERS.version] ?? 'v2');
        const request: NormalizeRequest = { tenant, receivedAt: Date.now(), entries: body.entries, bytes: body.bytes, mayHoldInfinity: body.bigNumbers === true, ...(body.refused?.length ? { refused: body.refused } : {}), ...(body.origins ? { origins: body.origins } : {}) };
        const result = await normalizer.normalize(request, { tenant, version, trace: traceHeaders(req) });
        metrics.accepted.inc({ tenant }, result.accepted);
        return result;
      } catch (e) {
        if (e instanceof IngestError) discard(tenant, e.code, n);
        throw e;
      } finally {
        lease.release();
        metrics.inflightBytes.dec(body.bytes);
        metrics.inflightEntries.dec(n);
      }
    };

    scope.post('/v2/ingest', async (req, reply): Promise<IngestResult | FastifyReply> => {
      const body = req.body as ParsedBody | undefined;
      if (!body) throw ingestError('INGEST_ERR_UNSUPPORTED_MEDIA_TYPE', ['(none)']);
      const result = await ingestParsed(req, body);
      // Nothing taken is never a 2xx: a client that reads only the status must see it.
      if (result.accepted === 0) return sendNoneAccepted(reply, result);
      return result;
    });

    registerQueryRoute(scope, { hop: queryHop, defaultQueriesPerSecond: cfg.defaultQueriesPerSecond, take: (tenant, rate) => takeOr503(rates, `q:${tenant}`, 1, rate) });

    await registerProtocolRoutes(scope, {
      ingestParsed,
      readCharged,
      bodyLimitBytes: cfg.bodyLimitBytes,
      maxEntries: cfg.maxEntriesPerRequest,
      maxDepth: cfg.maxNestingDepth,
      countSkipped: (req, reason, n) => skippedItems.inc({ tenant: req.principal?.tenant ?? 'anonymous', reason }, n),
    });
  });

  // Influx clients check /ping before writing; it says nothing about any tenant, so it needs no key.
  registerPing(app);

  // The drain has a deadline. Until it, requests in flight finish (new ones on open connections
  // get 503 SHUTTING_DOWN and the connection closed). At it, bodies still being read are cut with
  // 503 SHUTTING_DOWN: nothing half-read is acknowledged, and the client retries elsewhere. A
  // moment later every connection still open is closed, so close() ends in bounded time whatever
  // the clients do. Everything acknowledged before stays acknowledged: a 2xx is only ever sent
  // after the log has the entries.
  let drainTimer: NodeJS.Timeout | undefined;
  let forceTimer: NodeJS.Timeout | undefined;
  app.addHook('preClose', async () => {
    closing = true;
    drainTimer = setTimeout(() => {
      const cut = readingBodies.size;
      const err = ingestError('INGEST_ERR_SHUTTING_DOWN', [], { retryAfterSeconds: 1 });
      for (const body of readingBodies) body.abort(err);
      app.log.warn({ cut, drainTimeoutMs: cfg.drainTimeoutMs, open: guard.snapshot().open }, 'drain deadline: cutting uploads still being read, closing what is left');
      // An HTTP/2 server has no closeAllConnections; its sessions end with fastify's close.
      forceTimer = setTimeout(() => (app.server as { closeAllConnections?: () => void }).closeAllConnections?.(), DRAIN_FLUSH_MS);
      forceTimer.unref();
    }, cfg.drainTimeoutMs);
    // Unref'd: when the last connection ends before the deadline, nothing is left to wait for.
    drainTimer.unref();
  });
  app.addHook('onClose', async () => {
    clearTimeout(drainTimer);
    clearTimeout(forceTimer);
    keys.close();
    cutover.close();
    await rates.close();
    // Connections are gone by now; a handler still waiting on the normalizer answers no one.
    await httpNormalizer?.close(DRAIN_FLUSH_MS);
    await httpQuery?.close(DRAIN_FLUSH_MS);
  });
  return app;
}

/**
 * The granularity of a body's budget while it is read: its first reservation (or the declared
 * length, if smaller) and each growth. 64 KiB is the most one socket read delivers, so a body grows
 * at most once per chunk and never holds more than one step beyond what it has buffered.
 */
const READ_STEP_BYTES = 64 * 1024;

/** After the drain deadline, how long the cut answers get to reach their clients. */
const DRAIN_FLUSH_MS = 1000;

/** How often (at most) Node checks the headers and request deadlines of open connections. */
const CONNECTIONS_CHECK_MS = 1000;

function edgeOverloaded(): IngestError {
  return ingestError('INGEST_ERR_EDGE_OVERLOADED', [1], { retryAfterSeconds: retryAfterSeconds(1) });
}

async function takeOr503(rates: RateStore, key: string, amount: number, rate: number): Promise<TakeResult> {
  try {
    // Burst of one second's worth: the budget is a rate, not an allowance to save up.
    return await rates.take(key, amount, rate, rate);
  } catch (e) {
    throw ingestError('INGEST_ERR_DEPENDENCY_UNAVAILABLE', ['rate store', 1], { retryAfterSeconds: 1, cause: e });
  }
}

function rateLimited(code: 'INGEST_ERR_TENANT_ENTRY_RATE' | 'INGEST_ERR_TENANT_BYTE_RATE', tenant: string, limit: number, r: TakeResult): IngestError {
  const secs = Math.max(1, Math.ceil(r.retryAfterMs / 1000));
  return ingestError(code, [tenant, limit, secs], {
    retryAfterSeconds: secs,
    headers: { 'ratelimit-limit': String(limit), 'ratelimit-remaining': String(r.remaining), 'ratelimit-reset': String(secs) },
  });
}

function cutoverFromConfig(cfg: EdgeConfig): CutoverOptions {
  const c = cfg.cutover;
  return { file: c.file, reloadMs: c.reloadMs, maxLegacyInflight: c.maxLegacyInflight, ...(c.legacyUrl ? { legacyUrl: c.legacyUrl } : {}) };
}
