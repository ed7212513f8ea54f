import { accessSync, constants } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import { TOPICS } from '@ingest/contracts';
import { EnvReader, type Env } from './env.ts';
import { withConfigFile } from './config-file.ts';

/** Which backends run: chosen only by which URLs are set, never by a code fork. */
export interface BackendConfig {
  /** Kafka brokers when set; otherwise the embedded log under dataDir/log. */
  kafkaBrokers: string[] | undefined;
  /** ClickHouse HTTP URL when set; otherwise chDB under dataDir/chdb. */
  clickhouseUrl: string | undefined;
  clickhouseDatabase: string;
  /** Redis URL for shared rate state; otherwise in memory. */
  redisUrl: string | undefined;
  /** Bound on each Redis command; past it the edge answers 503 (a hung Redis never hangs requests). */
  redisCommandTimeoutMs: number;
  dataDir: string;
  topic: string;
  dlqTopic: string;
  partitions: number;
  /**
   * LOG_FSYNC, embedded log only. 'always' (default): a write is acknowledged after its fsync.
   * 'interval' (fsync every second) and 'never' (the OS decides) acknowledge BEFORE the data is on
   * disk: a power loss can lose what was acknowledged since the last fsync. Under any policy a
   * failed write or fsync takes the partition out (503, not ready) until it recovers.
   */
  logFsync: 'always' | 'interval' | 'never';
  /** Embedded log: size per partition above which fully-read segments are deleted. */
  logRetentionBytes: number;
  /** Kafka only: how the sink writer creates (and checks) its topics, and produce compression. */
  kafka: KafkaTopicConfig;
}

export interface KafkaTopicConfig {
  replicationFactor: number;
  minInsyncReplicas: number;
  /** `retention.ms` of created topics; -1 keeps for ever. */
  retentionMs: number;
  compression: 'gzip' | 'none';
}

export interface EdgeConfig {
  host: string;
  port: number;
  normalizerUrl: string;
  /** Where GET /v2/query is answered when the sink writer is another process. */
  sinkUrl: string;
  /** Per-tenant GET /v2/query requests per second: a token bucket of its own, so reads never take ingest's rate. */
  defaultQueriesPerSecond: number;
  /** Tenants and key hashes (JSON); re-read when it changes. */
  tenantsFile: string;
  bodyLimitBytes: number;
  /** Compressed bodies are bounded too, so a client can't stream an endless compressed body. */
  maxEntriesPerRequest: number;
  maxNestingDepth: number;
  inflightBytes: number;
  inflightEntries: number;
  /** Defaults for tenants without overrides in the tenants file. */
  defaultRequestsPerSecond: number;
  defaultEntriesPerSecond: number;
  defaultBytesPerSecond: number;
  downstreamTimeoutMs: number;
  cutover: CutoverConfig;
  /** Sent to the normalizer on every hop; see NormalizerConfig.internalToken. */
  internalToken: string | undefined;
  /**
   * Socket deadlines (README "Slow and many connections"). Internet-facing: seconds, not minutes.
   * headersTimeoutMs: from connecting (or the end of the previous request) to the end of the headers.
   * requestTimeoutMs: the whole request, headers and body, must arrive within it.
   * connectionTimeoutMs: a socket silent this long in either direction is closed; above the
   * downstream timeout, since a request waiting on the normalizer is silent too.
   * keepAliveTimeoutMs: an idle keep-alive connection is closed after it.
   */
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  connectionTimeoutMs: number;
  keepAliveTimeoutMs: number;
  /** A body must keep up this rate after bodyGraceMs (grace + received / rate), or it is cut with 408. */
  minBodyBytesPerSecond: number;
  bodyGraceMs: number;
  /** Inbound connections; the edge lowers it further to stay well below its open-file limit. */
  maxConnections: number;
  /** Inbound connections per client address; 0 turns the per-address cap off (behind a balancer). */
  maxConnectionsPerAddress: number;
  /**
   * On SIGTERM, how long requests in flight get to finish; then uploads still being read are cut
   * (503) and the edge exits about a second later. Below Kubernetes' default 30 s grace period.
   */
  drainTimeoutMs: number;
  /** Failed authentications per client address per window before it gets 429; 0: no limit. */
  authFailureLimit: number;
  authFailureWindowMs: number;
  /** Addresses with recent failures remembered at once (oldest forgotten first). */
  authFailureAddresses: number;
  /** The admin listener (/metrics, /status): never the public port. */
  adminHost: string;
  adminPort: number;
  /** Who may set the load balancer's routing headers (x-ingest-mirror, x-ingest-version). */
  trustedHops: TrustedHopsConfig;
  /** HTTPS on the public port; unset: plain HTTP (TLS ends at the load balancer). */
  tls?: EdgeTlsConfig | undefined;
  /** PEM file of the roots https:// NORMALIZER_URL / SINK_URL are verified against (INTERNAL_TLS_CA); unset: the system's. */
  hopCaFile?: string | undefined;
}

/**
 * The edge's certificate and key (PEM files). They are re-read when they change (a renewed
 * certificate, a Kubernetes Secret update) and applied to new connections; open ones keep theirs.
 */
export interface ServerTlsConfig {
  certFile: string;
  keyFile: string;
  /** How often the files are checked for a change. */
  reloadMs: number;
  /** The variables that named the files, for messages. */
  certVar: string;
  keyVar: string;
}

export interface EdgeTlsConfig extends ServerTlsConfig {
  /** HTTP/2 (with HTTP/1.1 still offered through ALPN). */
  http2: boolean;
}

/**
 * A request's LB-only headers count only when it comes from a trusted hop: it carries the LB's
 * shared secret, or its socket peer is a trusted proxy. Neither configured: nobody is trusted.
 */
export interface TrustedHopsConfig {
  /** LB_SHARED_SECRET: the LB sends it in x-ingest-lb-secret. */
  sharedSecret: string | undefined;
  /** TRUSTED_PROXIES: IPs and CIDRs, matched against the socket's remote address. */
  proxies: string[];
}

/** The v2 cutover (runbooks/cutover.md). With no set file and no legacy URL, everything is v2. */
export interface CutoverConfig {
  /** The cut-over set; default cutover.json beside the tenants file. */
  file: string;
  /** Where requests for tenants not cut over are forwarded whole. */
  legacyUrl: string | undefined;
  reloadMs: number;
  maxLegacyInflight: number;
}

export interface NormalizerConfig {
  host: string;
  port: number;
  /** When set, /internal and /admin routes require it, and hops downstream send it. */
  internalToken: string | undefined;
  adminHost: string;
  adminPort: number;
  sinkUrl: string;
  inflightBytes: number;
  inflightEntries: number;
  downstreamTimeoutMs: number;
  /** Per-entry label bounds (INGEST_ERR_ENTRY_LABELS beyond them): count, and keys plus values in UTF-8 bytes. */
  maxLabels: number;
  maxLabelBytes: number;
  /** HTTPS on the normalizer's port (internal TLS); unset: plain HTTP. */
  tls?: ServerTlsConfig | undefined;
  /** PEM file of the roots an https:// SINK_URL is verified against (INTERNAL_TLS_CA); unset: the system's. */
  hopCaFile?: string | undefined;
}

export interface SinkConfig {
  host: string;
  port: number;
  /** When set, /internal and /admin routes require it. */
  internalToken: string | undefined;
  adminHost: string;
  adminPort: number;
  /** HTTPS on the sink writer's port (internal TLS); unset: plain HTTP. */
  tls?: ServerTlsConfig | undefined;
  /** Bytes and entries waiting for the log, across tenants. */
  inflightBytes: number;
  inflightEntries: number;
  batchMaxEntries: number;
  batchMaxBytes: number;
  batchMaxWaitMs: number;
  loaderGroup: string;
  loaderBatchEntries: number;
  loaderBatchBytes: number;
  loaderMaxWaitMs: number;
  /** Set false to run a sink writer that only produces (e.g. a replica without a loader). */
  loaderEnabled: boolean;
  /** Attempts at a batch ClickHouse refuses for its data before its refused rows are dead-lettered. */
  loaderRefusedAttempts: number;
  /**
   * SINK_DRILL_ROUTES=true mounts POST /admin/v1/drill/delete-hour, which deletes live rows on
   * purpose for runbooks/drills.md. Off unless asked for: nothing else in the product deletes.
   */
  drillRoutes?: boolean;
  /** Bounds of every GET /v2/query the sink writer runs (README "Reading entries back"). */
  query: { maxExecutionSeconds: number; maxRowsRead: number; maxMemoryBytes: number };
  /** The rollup refresher (README "Rollups"), run beside the loader. */
  rollups: { enabled: boolean; intervalMs: number; settleMs: number };
}

export interface LoggingConfig {
  level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';
  requests: boolean;
}

/** OpenTelemetry tracing (README "Tracing"); standard OTEL_ variable names. */
export interface TracingConfig {
  /** OTLP/HTTP base URL (http://collector:4318); unset: no spans, no tracing cost. */
  endpoint: string | undefined;
  /** Share of traces started here (no sampled parent from the producer) that are recorded, 0..1. */
  sampleRatio: number;
}

export interface IngestConfig {
  /**
   * INGEST_TOPOLOGY, what `pnpm start` runs. 'single' (default): edge, normalizer and sink writer as
   * roles of one process, joined by in-process calls under the same budgets. 'split': one process
   * per service, joined by HTTP, as in a distributed deployment.
   */
  topology: 'single' | 'split';
  logging: LoggingConfig;
  tracing: TracingConfig;
  backends: BackendConfig;
  edge: EdgeConfig;
  normalizer: NormalizerConfig;
  sink: SinkConfig;
}

/** Reads and validates the whole configuration; throws ConfigError naming every bad key. */
export function loadConfig(env: Env = process.env): IngestConfig {
  const r = new EnvReader(withConfigFile(env));
  const dataDir = r.string('INGEST_DATA_DIR', '.data');
  const host = r.string('INGEST_HOST', '127.0.0.1');
  const edgePort = r.int('EDGE_PORT', 8080, { min: 0, max: 65535 });
  const normalizerPort = r.int('NORMALIZER_PORT', 8081, { min: 0, max: 65535 });
  const sinkPort = r.int('SINK_PORT', 8082, { min: 0, max: 65535 });
  const brokers = r.list('KAFKA_BROKERS', []);
  // One shared secret for service-to-service calls; unset keeps the internal network open (dev).
  const internalToken = r.optionalString('INGEST_INTERNAL_TOKEN');
  if (internalToken !== undefined && internalToken.length < 16) r.problem('INGEST_INTERNAL_TOKEN must be at least 16 characters');
  // Admin listeners (/metrics, /status) are loopback unless an operator opens them deliberately.
  const adminHost = r.string('ADMIN_HOST', '127.0.0.1');
  const edgeAdminPort = r.int('EDGE_ADMIN_PORT', 9080, { min: 0, max: 65535 });
  const normalizerAdminPort = r.int('NORMALIZER_ADMIN_PORT', 9081, { min: 0, max: 65535 });
  const sinkAdminPort = r.int('SINK_ADMIN_PORT', 9082, { min: 0, max: 65535 });
  for (const [key, admin, pub] of [['EDGE_ADMIN_PORT', edgeAdminPort, edgePort], ['NORMALIZER_ADMIN_PORT', normalizerAdminPort, normalizerPort], ['SINK_ADMIN_PORT', sinkAdminPort, sinkPort]] as const) {
    if (admin !== 0 && admin === pub) r.problem(`${key}=${admin} must differ from the service's public port`);
  }
  const lbSecret = r.optionalString('LB_SHARED_SECRET');
  if (lbSecret !== undefined && lbSecret.length < 16) r.problem('LB_SHARED_SECRET must be at least 16 characters');
  const trustedProxies = r.list('TRUSTED_PROXIES', []);
  for (const p of trustedProxies) if (!isIpOrCidr(p)) r.problem(`TRUSTED_PROXIES entry ${JSON.stringify(p)} is not an IP address or CIDR (e.g. 10.0.0.0/8, 127.0.0.1, fd00::/8)`);

  const http2 = r.oneOf('EDGE_HTTP2', ['true', 'false'] as const, 'false') === 'true';
  const edgeTls = serverTls(r, 'EDGE', r.int('EDGE_TLS_RELOAD_MS', 5_000, { min: 100, max: 3_600_000 }));
  // Browsers and most clients speak HTTP/2 only over TLS; cleartext h2c is not offered.
  if (http2 && edgeTls === undefined) r.problem('EDGE_HTTP2=true needs EDGE_TLS_CERT and EDGE_TLS_KEY (HTTP/2 is served over TLS only)');
  const internalReloadMs = r.int('INTERNAL_TLS_RELOAD_MS', 5_000, { min: 100, max: 3_600_000 });
  const normalizerTls = serverTls(r, 'NORMALIZER', internalReloadMs);
  const sinkTls = serverTls(r, 'SINK', internalReloadMs);
  const hopCaFile = r.optionalString('INTERNAL_TLS_CA');
  if (hopCaFile !== undefined && !readable(hopCaFile)) r.problem(`INTERNAL_TLS_CA=${hopCaFile} cannot be read: give the PEM file of the CA that signed the normalizer's and sink writer's certificates`);

  const cfg: IngestConfig = {
    topology: r.oneOf('INGEST_TOPOLOGY', ['single', 'split'] as const, 'single'),
    logging: {
      level: r.oneOf('LOG_LEVEL', ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const, 'info'),
      requests: r.oneOf('LOG_REQUESTS', ['true', 'false'] as const, 'false') === 'true',
    },
    tracing: {
      endpoint: r.url('OTEL_EXPORTER_OTLP_ENDPOINT'),
      sampleRatio: r.number('OTEL_TRACES_SAMPLER_ARG', 1, { min: 0, max: 1 }),
    },
    backends: {
      kafkaBrokers: brokers.length > 0 ? brokers : undefined,
      clickhouseUrl: r.url('CLICKHOUSE_URL'),
      clickhouseDatabase: r.string('CLICKHOUSE_DATABASE', 'default'),
      redisUrl: r.url('REDIS_URL'),
      redisCommandTimeoutMs: r.int('REDIS_COMMAND_TIMEOUT_MS', 500, { min: 10, max: 10_000 }),
      dataDir,
      topic: r.string('LOG_TOPIC', TOPICS.telemetry),
      dlqTopic: r.string('LOG_DLQ_TOPIC', TOPICS.deadLetter),
      partitions: r.int('LOG_PARTITIONS', 3, { min: 1, max: 1024 }),
      logFsync: r.oneOf('LOG_FSYNC', ['always', 'interval', 'never'] as const, 'always'),
      logRetentionBytes: r.bytes('LOG_RETENTION_BYTES', 1024 ** 3),
      kafka: {
        // Distributed defaults: three copies, and an acks=all write needs two of them.
        replicationFactor: r.int('KAFKA_REPLICATION_FACTOR', 3, { min: 1, max: 32767 }),
        minInsyncReplicas: r.int('KAFKA_MIN_INSYNC_REPLICAS', 2, { min: 1, max: 32767 }),
        retentionMs: r.int('KAFKA_RETENTION_MS', 7 * 24 * 3_600_000, { min: -1 }),
        compression: r.oneOf('KAFKA_COMPRESSION', ['gzip', 'none'] as const, 'gzip'),
      },
    },
    edge: {
      host,
      port: edgePort,
      normalizerUrl: r.url('NORMALIZER_URL') ?? `http://127.0.0.1:${normalizerPort}`,
      sinkUrl: r.url('SINK_URL') ?? `http://127.0.0.1:${sinkPort}`,
      defaultQueriesPerSecond: r.int('TENANT_DEFAULT_QPS', 20, { min: 1 }),
      tenantsFile: r.string('TENANTS_FILE', `${dataDir}/tenants.json`),
      bodyLimitBytes: r.bytes('EDGE_BODY_LIMIT', 8 * 1024 * 1024),
      maxEntriesPerRequest: r.int('EDGE_MAX_ENTRIES', 10_000, { min: 1 }),
      maxNestingDepth: r.int('EDGE_MAX_DEPTH', 32, { min: 2, max: 1000 }),
      inflightBytes: r.bytes('EDGE_INFLIGHT_BYTES', 256 * 1024 * 1024),
      inflightEntries: r.int('EDGE_INFLIGHT_ENTRIES', 200_000, { min: 1 }),
      defaultRequestsPerSecond: r.int('TENANT_DEFAULT_RPS', 1_000, { min: 1 }),
      defaultEntriesPerSecond: r.int('TENANT_DEFAULT_EPS', 50_000, { min: 1 }),
      defaultBytesPerSecond: r.bytes('TENANT_DEFAULT_BPS', 64 * 1024 * 1024),
      downstreamTimeoutMs: r.int('EDGE_DOWNSTREAM_TIMEOUT_MS', 30_000, { min: 100 }),
      internalToken,
      headersTimeoutMs: r.int('EDGE_HEADERS_TIMEOUT_MS', 10_000, { min: 100, max: 600_000 }),
      requestTimeoutMs: r.int('EDGE_REQUEST_TIMEOUT_MS', 30_000, { min: 100, max: 600_000 }),
      connectionTimeoutMs: r.int('EDGE_CONNECTION_TIMEOUT_MS', 40_000, { min: 100, max: 600_000 }),
      keepAliveTimeoutMs: r.int('EDGE_KEEP_ALIVE_TIMEOUT_MS', 5_000, { min: 100, max: 600_000 }),
      minBodyBytesPerSecond: r.bytes('EDGE_MIN_BODY_BYTES_PER_SECOND', 1024),
      bodyGraceMs: r.int('EDGE_BODY_GRACE_MS', 5_000, { min: 0, max: 600_000 }),
      maxConnections: r.int('EDGE_MAX_CONNECTIONS', 10_000, { min: 1 }),
      maxConnectionsPerAddress: r.int('EDGE_MAX_CONNECTIONS_PER_ADDRESS', 256, { min: 0 }),
      drainTimeoutMs: r.int('EDGE_DRAIN_TIMEOUT_MS', 20_000, { min: 0, max: 600_000 }),
      authFailureLimit: r.int('EDGE_AUTH_FAILURE_LIMIT', 20, { min: 0 }),
      authFailureWindowMs: r.int('EDGE_AUTH_FAILURE_WINDOW_MS', 60_000, { min: 1000, max: 3_600_000 }),
      authFailureAddresses: r.int('EDGE_AUTH_FAILURE_ADDRESSES', 10_000, { min: 1 }),
      tls: edgeTls ? { ...edgeTls, http2 } : undefined,
      hopCaFile,
      adminHost,
      adminPort: edgeAdminPort,
      trustedHops: { sharedSecret: lbSecret, proxies: trustedProxies },
      cutover: {
        file: r.string('CUTOVER_FILE', path.join(path.dirname(r.string('TENANTS_FILE', `${dataDir}/tenants.json`)), 'cutover.json')),
        legacyUrl: r.url('LEGACY_URL'),
        reloadMs: r.int('CUTOVER_RELOAD_MS', 1000, { min: 50 }),
        maxLegacyInflight: r.int('LEGACY_MAX_INFLIGHT', 256, { min: 1 }),
      },
    },
    normalizer: {
      host,
      port: normalizerPort,
      internalToken,
      adminHost,
      adminPort: normalizerAdminPort,
      sinkUrl: r.url('SINK_URL') ?? `http://127.0.0.1:${sinkPort}`,
      inflightBytes: r.bytes('NORMALIZER_INFLIGHT_BYTES', 256 * 1024 * 1024),
      inflightEntries: r.int('NORMALIZER_INFLIGHT_ENTRIES', 200_000, { min: 1 }),
      downstreamTimeoutMs: r.int('NORMALIZER_DOWNSTREAM_TIMEOUT_MS', 30_000, { min: 100 }),
      maxLabels: r.int('NORMALIZER_MAX_LABELS', 32, { min: 1, max: 1000 }),
      maxLabelBytes: r.bytes('NORMALIZER_MAX_LABEL_BYTES', 16 * 1024),
      tls: normalizerTls,
      hopCaFile,
    },
    sink: {
      host,
      port: sinkPort,
      internalToken,
      adminHost,
      adminPort: sinkAdminPort,
      tls: sinkTls,
      inflightBytes: r.bytes('SINK_INFLIGHT_BYTES', 256 * 1024 * 1024),
      inflightEntries: r.int('SINK_INFLIGHT_ENTRIES', 200_000, { min: 1 }),
      batchMaxEntries: r.int('SINK_BATCH_MAX_ENTRIES', 5_000, { min: 1 }),
      batchMaxBytes: r.bytes('SINK_BATCH_MAX_BYTES', 4 * 1024 * 1024),
      batchMaxWaitMs: r.int('SINK_BATCH_MAX_WAIT_MS', 5, { min: 0, max: 10_000 }),
      loaderGroup: r.string('LOADER_GROUP', 'clickhouse-loader'),
      loaderBatchEntries: r.int('LOADER_BATCH_ENTRIES', 20_000, { min: 1 }),
      loaderBatchBytes: r.bytes('LOADER_BATCH_BYTES', 16 * 1024 * 1024),
      loaderMaxWaitMs: r.int('LOADER_MAX_WAIT_MS', 200, { min: 0 }),
      loaderEnabled: r.oneOf('LOADER_ENABLED', ['true', 'false'] as const, 'true') === 'true',
      loaderRefusedAttempts: r.int('LOADER_REFUSED_ATTEMPTS', 3, { min: 1, max: 100 }),
      drillRoutes: r.oneOf('SINK_DRILL_ROUTES', ['true', 'false'] as const, 'false') === 'true',
      query: {
        maxExecutionSeconds: r.int('QUERY_MAX_EXECUTION_SECONDS', 10, { min: 1, max: 600 }),
        maxRowsRead: r.int('QUERY_MAX_ROWS_READ', 10_000_000, { min: 1 }),
        maxMemoryBytes: r.bytes('QUERY_MAX_MEMORY_BYTES', 256 * 1024 * 1024),
      },
      rollups: {
        enabled: r.oneOf('ROLLUP_ENABLED', ['true', 'false'] as const, 'true') === 'true',
        intervalMs: r.int('ROLLUP_INTERVAL_MS', 10_000, { min: 100, max: 3_600_000 }),
        // Longer than the store's 60 s request timeout: an insert that began before a cycle and
        // committed after it is counted by a later one.
        settleMs: r.int('ROLLUP_SETTLE_MS', 90_000, { min: 0, max: 86_400_000 }),
      },
    },
  };
  // "collector:4318" parses as a URL with scheme "collector:"; the exporter speaks HTTP only.
  if (cfg.tracing.endpoint !== undefined && !/^https?:$/.test(new URL(cfg.tracing.endpoint).protocol)) {
    r.problem(`OTEL_EXPORTER_OTLP_ENDPOINT=${JSON.stringify(cfg.tracing.endpoint)} must be an http:// or https:// URL`);
  }
  // Parent-based trace-id ratio is the only sampler; another name is refused, not silently ignored.
  r.oneOf('OTEL_TRACES_SAMPLER', ['parentbased_traceidratio'] as const, 'parentbased_traceidratio');
  if (cfg.sink.batchMaxBytes > cfg.sink.inflightBytes) {
    r.problem(`SINK_BATCH_MAX_BYTES (${cfg.sink.batchMaxBytes}) must not exceed SINK_INFLIGHT_BYTES (${cfg.sink.inflightBytes})`);
  }
  if (cfg.normalizer.maxLabelBytes < 64 || cfg.normalizer.maxLabelBytes > 1024 * 1024) {
    r.problem(`NORMALIZER_MAX_LABEL_BYTES (${cfg.normalizer.maxLabelBytes}) must be between 64 bytes and 1 MiB`);
  }
  const k = cfg.backends.kafka;
  // A topic whose min.insync.replicas exceeds its replicas refuses every acks=all write.
  if (k.minInsyncReplicas > k.replicationFactor) {
    r.problem(`KAFKA_MIN_INSYNC_REPLICAS (${k.minInsyncReplicas}) must not exceed KAFKA_REPLICATION_FACTOR (${k.replicationFactor})`);
  }
  if (k.retentionMs === 0) r.problem('KAFKA_RETENTION_MS=0 would delete entries as soon as they are written; use -1 to keep for ever');
  const e = cfg.edge;
  // Node refuses a headers timeout above the request timeout; say which keys, not a stack trace.
  if (e.headersTimeoutMs > e.requestTimeoutMs) {
    r.problem(`EDGE_HEADERS_TIMEOUT_MS (${e.headersTimeoutMs}) must not exceed EDGE_REQUEST_TIMEOUT_MS (${e.requestTimeoutMs})`);
  }
  // A request waiting on the normalizer sends nothing; a shorter idle timeout would cut it mid-answer.
  if (e.connectionTimeoutMs <= e.downstreamTimeoutMs) {
    r.problem(`EDGE_CONNECTION_TIMEOUT_MS (${e.connectionTimeoutMs}) must be above EDGE_DOWNSTREAM_TIMEOUT_MS (${e.downstreamTimeoutMs})`);
  }
  if (e.minBodyBytesPerSecond < 1) r.problem(`EDGE_MIN_BODY_BYTES_PER_SECOND=${e.minBodyBytesPerSecond} must be at least 1`);
  if (cfg.backends.kafkaBrokers && !cfg.backends.clickhouseUrl) {
    // Allowed, but worth knowing: the loader then writes to chDB on this machine.
  }
  r.done();
  return cfg;
}

/** <PREFIX>_TLS_CERT and <PREFIX>_TLS_KEY: both or neither. */
function serverTls(r: EnvReader, prefix: string, reloadMs: number): ServerTlsConfig | undefined {
  const certVar = `${prefix}_TLS_CERT`;
  const keyVar = `${prefix}_TLS_KEY`;
  const certFile = r.optionalString(certVar);
  const keyFile = r.optionalString(keyVar);
  if ((certFile === undefined) !== (keyFile === undefined)) r.problem(`${certVar} and ${keyVar} go together: set both (PEM files) for HTTPS, or neither`);
  return certFile !== undefined && keyFile !== undefined ? { certFile, keyFile, reloadMs, certVar, keyVar } : undefined;
}

function readable(file: string): boolean {
  try {
    accessSync(file, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

/** An IPv4/IPv6 address, or one with a /prefix in range for its family. */
export function isIpOrCidr(s: string): boolean {
  const slash = s.indexOf('/');
  if (slash < 0) return isIP(s) !== 0;
  const family = isIP(s.slice(0, slash));
  const prefix = s.slice(slash + 1);
  if (family === 0 || !/^\d{1,3}$/.test(prefix)) return false;
  return Number(prefix) <= (family === 4 ? 32 : 128);
}
