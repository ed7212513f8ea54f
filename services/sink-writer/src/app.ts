import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { HEADERS, INGEST_VERSIONS, ROUTES, IngestError, ingestError, type HopMeta, type QueryHop, type QueryPage, type QueryRequest, type RollupPage, type WriteBatch, type WriteHop, type WriteResult } from '@ingest/contracts';
import { inProcessStage, serveTls, splitWriteBody } from '@ingest/internal-http';
import type { BackendConfig, SinkConfig } from '@ingest/config';
import { LogRecordTooLargeError, LogUnavailableError, openLog, type DurableLog, type LogMessage } from '@ingest/log';
import { FairBudget, retryAfterSeconds } from '@ingest/queue';
import { TABLES, TelemetryStore, parseEntryQuery, queryEntries, queryRollups, type TableName } from '@ingest/storage';
import { createServiceMetrics, protocolErrorOptions, installServiceBasics, serverLogOptions, traceHeaders, traceStage, traceUnder, type LoggingOptions } from '@ingest/observability';
import { Counter, Gauge, Histogram } from 'prom-client';
import { LogBatcher } from './batch/log-batcher.ts';
import { ClickHouseLoader } from './loader/clickhouse-loader.ts';
import { DayGate } from './loader/day-gate.ts';
import { RollupRefresher } from './rollups/refresher.ts';
import { registerReplayRoutes } from './replay/routes.ts';
import { registerOpsRoutes } from './ops-routes.ts';
import { registerDlqRoutes } from './dlq-routes.ts';

/**
 * Mirror copies (the LB's copy of a request for a tenant still on legacy, marked by the edge with
 * INGEST_VERSIONS.mirror) go to their own topic, loaded into telemetry_mirror only: no consumer of
 * the live topic, no live or shadow table, ever sees traffic legacy is authoritative for.
 */
export const mirrorTopicOf = (topic: string): string => `${topic}.mirror`;

export interface SinkWriterOptions {
  config: SinkConfig;
  backends: BackendConfig;
  /** Injected log (tests wrap the real one to hold it); otherwise opened from `backends`. */
  log?: DurableLog;
  /** Injected store; otherwise opened from `backends`. */
  store?: TelemetryStore;
  logger?: boolean;
  logging?: LoggingOptions;
}

/** The sink writer's HTTP service, and the stage itself for a caller in the same process. */
export type SinkWriterApp = FastifyInstance & { hop: WriteHop & QueryHop };

export async function buildSinkWriter(opts: SinkWriterOptions): Promise<SinkWriterApp> {
  const { config: cfg, backends: be } = opts;
  const tls = cfg.tls ? serveTls(cfg.tls) : undefined;
  const app = (Fastify as unknown as (o: object) => FastifyInstance)({
    ...serverLogOptions('sink-writer', opts.logging, opts.logger !== false),
    bodyLimit: 512 * 1024 * 1024,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    // What Node's parser or the router refuse is answered with a catalog code too.
    ...protocolErrorOptions,
    ...(tls ? { https: tls.https } : {}),
  });
  tls?.attach(app);
  const metrics = createServiceMetrics('sink-writer', { defaultMetrics: opts.logger !== false });
  const tornTails = new Counter({ name: 'ingest_log_torn_tail_total', help: 'Torn or corrupt log tails cut back at start', registers: [metrics.registry] });
  const loaded = new Counter({ name: 'ingest_loader_rows_total', help: 'Rows inserted into ClickHouse by the loader', registers: [metrics.registry] });
  const loadErrors = new Counter({ name: 'ingest_loader_errors_total', help: 'Failed loader inserts (retried)', registers: [metrics.registry] });
  const deadLettered = new Counter({ name: 'ingest_loader_dead_lettered_total', help: 'Entries ClickHouse refused for their data, sent to the dead-letter topic, by ClickHouse error', labelNames: ['reason'], registers: [metrics.registry] });
  const badMessages = new Counter({ name: 'ingest_loader_bad_messages_total', help: 'Log messages that could not be decoded', registers: [metrics.registry] });
  const insertSeconds = new Histogram({ name: 'ingest_loader_insert_seconds', help: 'ClickHouse insert latency per batch', registers: [metrics.registry], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5] });
  const corruptRecords = new Counter({ name: 'ingest_log_corrupt_records_total', help: 'Damaged log records stepped over and quarantined (their entries are lost)', registers: [metrics.registry] });
  let corruptSeen = 0;
  const queries = new Counter({ name: 'ingest_query_requests_total', help: 'Reads (GET /v2/query, ingestctl query/tail) by kind and result: ok or the error code', labelNames: ['kind', 'result'], registers: [metrics.registry] });
  const querySeconds = new Histogram({ name: 'ingest_query_seconds', help: 'Time to answer a read, by kind', labelNames: ['kind'], registers: [metrics.registry], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] });
  const rollupCycles = new Counter({ name: 'ingest_rollup_cycles_total', help: 'Rollup refresh cycles by result (ok, error)', labelNames: ['result'], registers: [metrics.registry] });
  const rollupSeconds = new Histogram({ name: 'ingest_rollup_cycle_seconds', help: 'Time of one rollup refresh cycle', registers: [metrics.registry], buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30] });
  const lagGauge = new Gauge({
    name: 'ingest_loader_lag_messages',
    help: 'Messages in the log not yet loaded',
    registers: [metrics.registry],
    // Measured at scrape time, so the gauge is never stale.
    collect: async () => {
      await lag().catch(() => undefined);
    },
  });

  const log =
    opts.log ??
    openLog({
      kafkaBrokers: be.kafkaBrokers,
      dir: path.join(be.dataDir, 'log'),
      partitions: be.partitions,
      fsync: be.logFsync,
      retentionBytes: be.logRetentionBytes,
      kafka: be.kafka,
      clientId: 'sink-writer',
      onTornTail: (info) => {
        tornTails.inc();
        app.log.warn(info, 'log tail was torn; cut back to the last whole record');
      },
      onCorruptRecord: (info) => {
        corruptSeen += info.records;
        corruptRecords.inc(info.records);
        app.log.error(info, 'damaged log record skipped and quarantined; every other record is still delivered');
      },
    });
  const admin = log.admin();
  await admin.ensureTopic(be.topic, be.partitions);
  await admin.ensureTopic(be.dlqTopic, be.partitions);
  const mirrorTopic = mirrorTopicOf(be.topic);
  await admin.ensureTopic(mirrorTopic, be.partitions);

  const store = opts.store ?? (await TelemetryStore.open({ url: be.clickhouseUrl, database: be.clickhouseDatabase, chdbPath: path.join(be.dataDir, 'chdb') }));
  await store.migrate();

  const producer = log.producer();
  const batchOpts = { maxEntries: cfg.batchMaxEntries, maxBytes: cfg.batchMaxBytes, maxWaitMs: cfg.batchMaxWaitMs };
  const telemetry = new LogBatcher(producer, { topic: be.topic, ...batchOpts });
  const deadLetters = new LogBatcher(producer, { topic: be.dlqTopic, ...batchOpts });
  const mirrored = new LogBatcher(producer, { topic: mirrorTopic, ...batchOpts });
  const budget = new FairBudget({ maxBytes: cfg.inflightBytes, maxEntries: cfg.inflightEntries });

  // The live loader and promote share it: a promote holds its day so no insert is replaced away.
  const liveGate = new DayGate();
  let loader: ClickHouseLoader | undefined;
  let mirrorLoader: ClickHouseLoader | undefined;
  let lastLoadError: string | undefined;
  if (cfg.loaderEnabled) {
    const consumer = log.consumer({
      group: cfg.loaderGroup,
      topic: be.topic,
      maxBatchMessages: cfg.loaderBatchEntries,
      maxBatchBytes: cfg.loaderBatchBytes,
      maxWaitMs: cfg.loaderMaxWaitMs,
    });
    loader = new ClickHouseLoader(consumer, store, TABLES.live, {
      onInserted: (_b, rows, ms) => {
        loaded.inc(rows);
        insertSeconds.observe(ms / 1000);
        lastLoadError = undefined;
      },
      onError: (b, e) => {
        loadErrors.inc();
        lastLoadError = (e as Error).message;
        app.log.warn({ err: e, partition: b.partition, firstOffset: b.firstOffset }, 'loader insert failed; will retry the same range');
      },
      onBadMessage: (b, offset, reason) => {
        badMessages.inc();
        app.log.error({ partition: b.partition, offset, reason }, 'undecodable log message skipped');
      },
      onDeadLettered: (b, refused) => {
        for (const r of refused) deadLettered.inc({ reason: r.refusal.type });
        app.log.error({ partition: b.partition, firstOffset: b.firstOffset, lastOffset: b.lastOffset, offsets: refused.map((r) => r.offset).slice(0, 20), reason: refused[0]?.refusal.type }, 'entries refused by ClickHouse sent to the dead-letter topic');
      },
    }, { deadLetter: { producer, topic: be.dlqTopic }, refusedAttempts: cfg.loaderRefusedAttempts, gate: liveGate });
    loader.start();
    const mirrorConsumer = log.consumer({
      group: `${cfg.loaderGroup}.mirror`,
      topic: mirrorTopic,
      maxBatchMessages: cfg.loaderBatchEntries,
      maxBatchBytes: cfg.loaderBatchBytes,
      maxWaitMs: cfg.loaderMaxWaitMs,
    });
    mirrorLoader = new ClickHouseLoader(mirrorConsumer, store, TABLES.mirror, {
      onError: (b, e) => {
        loadErrors.inc();
        app.log.warn({ err: e, topic: mirrorTopic, partition: b.partition, firstOffset: b.firstOffset }, 'mirror loader insert failed; will retry the same range');
      },
      onBadMessage: (b, offset, reason) => {
        badMessages.inc();
        app.log.error({ topic: mirrorTopic, partition: b.partition, offset, reason }, 'undecodable mirror message skipped');
      },
    });
    mirrorLoader.start();
  }
  // Beside the loader: whoever loads live keeps its rollups equal to it.
  let rollups: RollupRefresher | undefined;
  if (cfg.loaderEnabled && cfg.rollups.enabled) {
    rollups = new RollupRefresher(store.client, {
      intervalMs: cfg.rollups.intervalMs,
      settleMs: cfg.rollups.settleMs,
      onCycle: (c) => {
        rollupCycles.inc({ result: 'ok' });
        rollupSeconds.observe(c.ms / 1000);
      },
      onError: (e) => {
        rollupCycles.inc({ result: 'error' });
        app.log.warn({ err: e }, 'rollup refresh failed; the next cycle reads the same markers again');
      },
    });
    rollups.start();
  }

  const lag = async () => {
    const [parts, committed] = await Promise.all([admin.partitions(be.topic), admin.committed(cfg.loaderGroup, be.topic)]);
    let total = 0;
    const perPartition = parts.map((p) => {
      const c = committed.find((x) => x.partition === p.partition)?.offset ?? -1;
      const l = p.high - Math.max(c, p.low);
      total += l;
      return { partition: p.partition, high: p.high, committed: c, lag: l };
    });
    lagGauge.set(total);
    return { total, perPartition };
  };

  let closing = false;
  installServiceBasics(app, {
    service: 'sink-writer',
    metrics,
    internalToken: cfg.internalToken,
    readiness: async () => {
      const ch = await store.ping();
      // Ready means "can take writes": the log. ClickHouse down only delays loading (the log holds
      // the data), so it shows as a check but does not take the sink out of the load balancer.
      // A log that refuses appends (disk full, failed fsync) makes every write a 503: not ready
      // until its recovery succeeds.
      const appends = log.health?.() ?? { ok: true, failing: [] };
      const logCheck = appends.ok ? log.kind : `appends failing: ${appends.failing.map((f) => f.error).join('; ').slice(0, 300)}`;
      return { ready: !closing && appends.ok, checks: { log: logCheck, store: ch ? `ok (${store.kind})` : 'unreachable', ...(lastLoadError ? { loader: lastLoadError } : {}) } };
    },
    status: async () => ({ budget: budget.snapshot(), log: log.kind, store: store.kind, lag: await lag().catch((e: unknown) => ({ error: (e as Error).message })), logCorruptRecords: corruptSeen, rollups: rollups?.status() ?? 'off' }),
  });

  /** Appends the normalizer's rows and dead letters as they are; the 2xx waits for the log. */
  const write = async (batch: WriteBatch, meta: HopMeta): Promise<WriteResult> => {
    if (closing) throw ingestError('INGEST_ERR_SHUTTING_DOWN', [], { retryAfterSeconds: 1 });
    const tenant = batch.tenant;
    // The trace headers name the caller's span, so a consumer of the log can continue the trace.
    const headers: Record<string, string> = { [HEADERS.tenant]: tenant, [HEADERS.version]: meta.version, ...meta.trace };
    const msgs: LogMessage[] = new Array(batch.rows.length);
    for (let i = 0; i < batch.rows.length; i++) msgs[i] = { key: tenant, value: batch.rows[i] as Buffer, headers };
    const mirror = meta.version === INGEST_VERSIONS.mirror;
    // A mirror copy's rejects are legacy's business (it is authoritative); they stay out of the live DLQ.
    const dlq: LogMessage[] = mirror ? [] : batch.deadLetters.map((value) => ({ key: tenant, value, headers }));
    const bytes = batch.rowBytes;
    const n = msgs.length + dlq.length;
    const got = budget.tryAcquire(tenant, bytes, n);
    if (!got.ok) {
      metrics.discarded.inc({ tenant, reason: 'INGEST_ERR_SINK_OVERLOADED' }, n);
      throw ingestError('INGEST_ERR_SINK_OVERLOADED', [1], { retryAfterSeconds: retryAfterSeconds(1) });
    }
    metrics.inflightBytes.inc(bytes);
    metrics.inflightEntries.inc(n);
    try {
      await traceUnder(app, meta.trace, 'log.append', Promise.all([(mirror ? mirrored : telemetry).submit(msgs, bytes), deadLetters.submit(dlq, 0)]), { 'messaging.batch.message_count': n });
    } catch (e) {
      // Permanent: a retry of the same request would fail the same way, so it is not a 503.
      if (e instanceof LogRecordTooLargeError) {
        metrics.discarded.inc({ tenant, reason: 'INGEST_ERR_LOG_RECORD_TOO_LARGE' }, n);
        throw ingestError('INGEST_ERR_LOG_RECORD_TOO_LARGE', [e.recordBytes, e.limitBytes], { cause: e });
      }
      metrics.discarded.inc({ tenant, reason: 'INGEST_ERR_LOG_UNAVAILABLE' }, n);
      const reason = e instanceof LogUnavailableError ? e.message : (e as Error).message;
      throw ingestError('INGEST_ERR_LOG_UNAVAILABLE', [reason.slice(0, 200)], { retryAfterSeconds: retryAfterSeconds(1), cause: e });
    } finally {
      got.lease.release();
      metrics.inflightBytes.dec(bytes);
      metrics.inflightEntries.dec(n);
    }
    metrics.accepted.inc({ tenant }, msgs.length);
    return { accepted: msgs.length, deadLettered: dlq.length };
  };

  // The body is the normalizer's lines as they are: kept as bytes, never parsed here.
  app.addContentTypeParser('application/x-ndjson', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  app.post(ROUTES.write, async (req): Promise<WriteResult> => {
    const tenant = req.headers[HEADERS.tenant];
    if (typeof tenant !== 'string' || tenant === '') throw ingestError('INGEST_ERR_INVALID_BODY', [`header ${HEADERS.tenant} is required`]);
    const rowCount = Number(req.headers[HEADERS.rows]);
    if (!Number.isSafeInteger(rowCount) || rowCount < 0) throw ingestError('INGEST_ERR_INVALID_BODY', [`header ${HEADERS.rows} must be a count of rows`]);
    if (!Buffer.isBuffer(req.body)) throw ingestError('INGEST_ERR_UNSUPPORTED_MEDIA_TYPE', [String(req.headers['content-type'] ?? '(none)').slice(0, 64)]);
    const lines = splitWriteBody(req.body, rowCount);
    return write({ tenant, ...lines }, { tenant, version: String(req.headers[HEADERS.version] ?? 'v2'), trace: traceHeaders(req) });
  });

  /**
   * A tenant's read (GET /v2/query on the edge). The tenant is the hop's, which the edge took from
   * the API key; the query string is parsed here and every value bound as a parameter.
   */
  const query = async (request: QueryRequest, meta: HopMeta): Promise<QueryPage | RollupPage> => {
    if (closing) throw ingestError('INGEST_ERR_SHUTTING_DOWN', [], { retryAfterSeconds: 1 });
    const started = performance.now();
    let kind = 'entries';
    try {
      const q = parseEntryQuery(request.search, meta.tenant, Date.now());
      const { rollup } = q;
      kind = rollup === undefined ? 'entries' : `rollup_${rollup}`;
      const page = rollup === undefined ? await queryEntries(store.client, q, cfg.query) : await queryRollups(store.client, { ...q, rollup }, cfg.query);
      queries.inc({ kind, result: 'ok' });
      return page;
    } catch (e) {
      queries.inc({ kind, result: e instanceof IngestError ? e.code : 'error' });
      throw e;
    } finally {
      querySeconds.observe({ kind }, (performance.now() - started) / 1000);
    }
  };
  app.post(ROUTES.query, async (req): Promise<QueryPage | RollupPage> => {
    const tenant = req.headers[HEADERS.tenant];
    if (typeof tenant !== 'string' || tenant === '') throw ingestError('INGEST_ERR_INVALID_BODY', [`header ${HEADERS.tenant} is required`]);
    const search = (req.body as { search?: unknown } | null)?.search;
    if (typeof search !== 'string') throw ingestError('INGEST_ERR_INVALID_BODY', ['send {"search": "<query string>"}']);
    return query({ search }, { tenant, version: String(req.headers[HEADERS.version] ?? 'v2'), trace: traceHeaders(req) });
  });

  // The same read for operators (ingestctl query, tail): any tenant, named by `tenant`, behind the internal token.
  app.get('/admin/v1/query', async (req): Promise<QueryPage | RollupPage> => {
    const tenant = (req.query as { tenant?: unknown }).tenant;
    if (typeof tenant !== 'string' || tenant === '') throw ingestError('INGEST_ERR_INVALID_PARAMETER', ['tenant', 'required: the tenant whose entries to read']);
    const qmark = req.url.indexOf('?');
    // parseEntryQuery skips `tenant`; the tenant read is the one named here.
    return query({ search: qmark === -1 ? '' : req.url.slice(qmark + 1) }, { tenant, version: 'v2', trace: traceHeaders(req) });
  });

  // Embedded mode has one chDB per process, so reads for operators go through this service.
  app.get('/admin/v1/count', async (req) => {
    const q = req.query as { tenant?: string; type?: string; since?: string; table?: string };
    if (!q.tenant) throw ingestError('INGEST_ERR_INVALID_BODY', ['query parameter tenant is required']);
    const table = tableParam(q.table);
    const count = await store.count({ tenant: q.tenant, table, ...(q.type ? { type: q.type } : {}), ...(q.since ? { sinceMs: Number(q.since) } : {}) });
    return { count };
  });
  app.get('/admin/v1/row-stats', async (req) => {
    const q = req.query as { tenant?: string; table?: string };
    return store.rowStats(tableParam(q.table), q.tenant);
  });
  app.get('/admin/v1/lag', async () => lag());
  // One rollup cycle now, after the one in progress: for operators after a repair, and for tests.
  app.post('/admin/v1/rollups/refresh', async () => {
    if (!rollups) throw ingestError('INGEST_ERR_INVALID_PARAMETER', ['rollups', 'this sink writer runs no rollup refresher (LOADER_ENABLED or ROLLUP_ENABLED is false)']);
    await rollups.refreshNow();
    return rollups.status();
  });
  registerOpsRoutes(app, { store, drillRoutes: cfg.drillRoutes === true });
  registerDlqRoutes(app, { admin, topic: be.dlqTopic });
  registerReplayRoutes(app, { log, admin, store, producer, topic: be.topic, dataDir: be.dataDir, liveGate });

  app.addHook('preClose', async () => {
    closing = true;
  });
  // Drain order: requests finish (fastify), pending appends are sent, the loader commits its batch,
  // then the store and the log close. Nothing acknowledged is left only in memory.
  app.addHook('onClose', async () => {
    await telemetry.close();
    await deadLetters.close();
    await mirrored.close();
    await loader?.close();
    await mirrorLoader?.close();
    await rollups?.close();
    await producer.close();
    await log.close();
    if (!opts.store) await store.close();
  });
  const hop: WriteHop & QueryHop = {
    write: inProcessStage('sink-writer', app.log, (batch: WriteBatch, meta: HopMeta) => traceStage(app, 'sink-writer write', meta.trace, (trace) => write(batch, { ...meta, trace }))),
    query: inProcessStage('sink-writer', app.log, query),
  };
  // A plain property, not a fastify decorator: in-process callers need it typed, HTTP callers never see it.
  return Object.assign(app as FastifyInstance, { hop });
}

/** The table named by an admin query, allow-listed; live when absent. */
function tableParam(t: string | undefined): TableName {
  if (t === undefined || t === TABLES.live) return TABLES.live;
  if (t === TABLES.shadow || t === TABLES.mirror) return t;
  throw ingestError('INGEST_ERR_INVALID_BODY', [`table must be one of ${Object.values(TABLES).join(', ')}`]);
}
