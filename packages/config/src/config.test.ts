import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseByteSize } from './index.ts';

describe('loadConfig', () => {
  it('defaults to the embedded backends when no URLs are set', () => {
    const c = loadConfig({});
    expect(c.backends.kafkaBrokers).toBeUndefined();
    expect(c.backends.clickhouseUrl).toBeUndefined();
    expect(c.backends.redisUrl).toBeUndefined();
    expect(c.edge.port).toBe(8080);
  });

  it('names every bad key in one error', () => {
    let err: unknown;
    try {
      loadConfig({ EDGE_PORT: 'eighty', LOG_FSYNC: 'sometimes', EDGE_BODY_LIMIT: '12 parsecs' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const msg = (err as ConfigError).message;
    expect(msg).toContain('EDGE_PORT');
    expect(msg).toContain('LOG_FSYNC');
    expect(msg).toContain('EDGE_BODY_LIMIT');
    expect((err as ConfigError).problems).toHaveLength(3);
  });

  it('puts the cut-over set beside the tenants file and validates its numbers', () => {
    expect(loadConfig({ TENANTS_FILE: '/d/tenants.json' }).edge.cutover).toEqual({ file: '/d/cutover.json', legacyUrl: undefined, reloadMs: 1000, maxLegacyInflight: 256 });
    expect(loadConfig({ LEGACY_URL: 'http://l:1', CUTOVER_FILE: '/x.json', CUTOVER_RELOAD_MS: '200' }).edge.cutover).toMatchObject({ file: '/x.json', legacyUrl: 'http://l:1', reloadMs: 200 });
    expect(() => loadConfig({ CUTOVER_RELOAD_MS: 'soon' })).toThrow(/CUTOVER_RELOAD_MS/);
  });

  it('reads the edge certificate pair, and refuses half a pair or HTTP/2 without TLS', () => {
    expect(loadConfig({}).edge.tls).toBeUndefined();
    expect(loadConfig({ EDGE_TLS_CERT: '/c.pem', EDGE_TLS_KEY: '/k.pem', EDGE_HTTP2: 'true' }).edge.tls).toEqual({ certFile: '/c.pem', keyFile: '/k.pem', http2: true, reloadMs: 5000, certVar: 'EDGE_TLS_CERT', keyVar: 'EDGE_TLS_KEY' });
    expect(() => loadConfig({ EDGE_TLS_CERT: '/c.pem' })).toThrow(/EDGE_TLS_CERT and EDGE_TLS_KEY go together/);
    expect(() => loadConfig({ EDGE_HTTP2: 'true' })).toThrow(/EDGE_HTTP2=true needs EDGE_TLS_CERT/);
    expect(() => loadConfig({ EDGE_TLS_CERT: '/c.pem', EDGE_TLS_KEY: '/k.pem', EDGE_TLS_RELOAD_MS: '5' })).toThrow(/EDGE_TLS_RELOAD_MS/);
  });

  it('internal TLS: the normalizer and sink writer pairs, the CA the hops trust; half a pair or an unreadable CA is refused by name', () => {
    const c = loadConfig({ NORMALIZER_TLS_CERT: '/n.crt', NORMALIZER_TLS_KEY: '/n.key', SINK_TLS_CERT: '/s.crt', SINK_TLS_KEY: '/s.key', INTERNAL_TLS_RELOAD_MS: '1000' });
    expect(c.normalizer.tls).toEqual({ certFile: '/n.crt', keyFile: '/n.key', reloadMs: 1000, certVar: 'NORMALIZER_TLS_CERT', keyVar: 'NORMALIZER_TLS_KEY' });
    expect(c.sink.tls).toMatchObject({ certFile: '/s.crt', keyFile: '/s.key', certVar: 'SINK_TLS_CERT' });
    expect(loadConfig({}).sink.tls).toBeUndefined();
    expect(() => loadConfig({ SINK_TLS_KEY: '/s.key' })).toThrow(/SINK_TLS_CERT and SINK_TLS_KEY go together/);
    expect(() => loadConfig({ INTERNAL_TLS_CA: '/nonexistent/ca.pem' })).toThrow(/INTERNAL_TLS_CA=\/nonexistent\/ca.pem cannot be read/);
    const withCa = loadConfig({ INTERNAL_TLS_CA: new URL(import.meta.url).pathname });
    expect(withCa.edge.hopCaFile).toBe(new URL(import.meta.url).pathname);
    expect(withCa.normalizer.hopCaFile).toBe(new URL(import.meta.url).pathname);
  });

  it('shares one internal token with every service and refuses a short one', () => {
    const c = loadConfig({ INGEST_INTERNAL_TOKEN: 'x'.repeat(32) });
    expect([c.edge.internalToken, c.normalizer.internalToken, c.sink.internalToken]).toEqual(['x'.repeat(32), 'x'.repeat(32), 'x'.repeat(32)]);
    expect(() => loadConfig({ INGEST_INTERNAL_TOKEN: 'short' })).toThrow(/INGEST_INTERNAL_TOKEN/);
  });

  it('reads tracing from the standard OTEL_ variables and validates them', () => {
    expect(loadConfig({}).tracing).toEqual({ endpoint: undefined, sampleRatio: 1 });
    expect(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_TRACES_SAMPLER_ARG: '0.25' }).tracing).toEqual({ endpoint: 'http://collector:4318', sampleRatio: 0.25 });
    expect(() => loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' })).toThrow(/OTEL_EXPORTER_OTLP_ENDPOINT/);
    expect(() => loadConfig({ OTEL_TRACES_SAMPLER_ARG: '1.5' })).toThrow(/OTEL_TRACES_SAMPLER_ARG/);
    expect(() => loadConfig({ OTEL_TRACES_SAMPLER: 'always_off' })).toThrow(/OTEL_TRACES_SAMPLER/);
  });

  it('puts /metrics and /status on loopback admin ports and refuses an admin port equal to the public one', () => {
    const c = loadConfig({});
    expect([c.edge.adminHost, c.edge.adminPort, c.normalizer.adminPort, c.sink.adminPort]).toEqual(['127.0.0.1', 9080, 9081, 9082]);
    expect(loadConfig({ ADMIN_HOST: '0.0.0.0', EDGE_ADMIN_PORT: '0' }).edge).toMatchObject({ adminHost: '0.0.0.0', adminPort: 0 });
    expect(() => loadConfig({ EDGE_ADMIN_PORT: '8080' })).toThrow(/EDGE_ADMIN_PORT/);
    expect(() => loadConfig({ SINK_ADMIN_PORT: 'admin' })).toThrow(/SINK_ADMIN_PORT/);
  });

  it('trusts no hop by default; validates LB_SHARED_SECRET and TRUSTED_PROXIES, naming the key', () => {
    expect(loadConfig({}).edge.trustedHops).toEqual({ sharedSecret: undefined, proxies: [] });
    expect(loadConfig({ LB_SHARED_SECRET: 's'.repeat(16), TRUSTED_PROXIES: '10.0.0.0/8, 127.0.0.1, fd00::/8, ::1' }).edge.trustedHops).toEqual({
      sharedSecret: 's'.repeat(16),
      proxies: ['10.0.0.0/8', '127.0.0.1', 'fd00::/8', '::1'],
    });
    expect(() => loadConfig({ LB_SHARED_SECRET: 'short' })).toThrow(/LB_SHARED_SECRET/);
    for (const bad of ['10.0.0.0/33', 'lb.internal', '10.0.0/8', '::1/129', '10.0.0.1/', '10.0.0.1/x']) {
      expect(() => loadConfig({ TRUSTED_PROXIES: `127.0.0.1,${bad}` }), bad).toThrow(/TRUSTED_PROXIES/);
    }
  });

  it('reads brokers as a list', () => {
    expect(loadConfig({ KAFKA_BROKERS: '127.0.0.1:9092, 127.0.0.1:9093' }).backends.kafkaBrokers).toEqual(['127.0.0.1:9092', '127.0.0.1:9093']);
  });

  it('reads Kafka topic settings and compression, with distributed defaults', () => {
    expect(loadConfig({}).backends.kafka).toEqual({ replicationFactor: 3, minInsyncReplicas: 2, retentionMs: 604_800_000, compression: 'gzip' });
    expect(
      loadConfig({ KAFKA_REPLICATION_FACTOR: '1', KAFKA_MIN_INSYNC_REPLICAS: '1', KAFKA_RETENTION_MS: '-1', KAFKA_COMPRESSION: 'none' }).backends.kafka,
    ).toEqual({ replicationFactor: 1, minInsyncReplicas: 1, retentionMs: -1, compression: 'none' });
  });

  it('names the key of a bad Kafka setting', () => {
    expect(() => loadConfig({ KAFKA_REPLICATION_FACTOR: 'three' })).toThrow(/KAFKA_REPLICATION_FACTOR="three" is not an integer/);
    expect(() => loadConfig({ KAFKA_REPLICATION_FACTOR: '0' })).toThrow(/KAFKA_REPLICATION_FACTOR=0 is below the minimum 1/);
    expect(() => loadConfig({ KAFKA_COMPRESSION: 'zstd' })).toThrow(/KAFKA_COMPRESSION="zstd" is not one of gzip, none/);
    expect(() => loadConfig({ KAFKA_RETENTION_MS: '-5' })).toThrow(/KAFKA_RETENTION_MS=-5 is below the minimum -1/);
    expect(() => loadConfig({ KAFKA_RETENTION_MS: '0' })).toThrow(/KAFKA_RETENTION_MS=0/);
    expect(() => loadConfig({ KAFKA_REPLICATION_FACTOR: '1' })).toThrow(/KAFKA_MIN_INSYNC_REPLICAS \(2\) must not exceed KAFKA_REPLICATION_FACTOR \(1\)/);
  });
});

describe('parseByteSize', () => {
  it.each([
    ['1024', 1024],
    ['16MiB', 16 * 1024 * 1024],
    ['10MB', 10_000_000],
    ['1.5KiB', 1536],
  ])('%s → %d', (s, n) => expect(parseByteSize(s)).toBe(n));
  it('rejects unknown units', () => expect(parseByteSize('3 furlongs')).toBeUndefined());

  it('bounds labels per entry with defaults and refuses nonsense at start', () => {
    expect(loadConfig({}).normalizer).toMatchObject({ maxLabels: 32, maxLabelBytes: 16 * 1024 });
    expect(loadConfig({ NORMALIZER_MAX_LABELS: '64', NORMALIZER_MAX_LABEL_BYTES: '32KiB' }).normalizer).toMatchObject({ maxLabels: 64, maxLabelBytes: 32 * 1024 });
    expect(() => loadConfig({ NORMALIZER_MAX_LABELS: '0' })).toThrow(/NORMALIZER_MAX_LABELS/);
    expect(() => loadConfig({ NORMALIZER_MAX_LABELS: '300000' })).toThrow(/NORMALIZER_MAX_LABELS/);
    expect(() => loadConfig({ NORMALIZER_MAX_LABEL_BYTES: '2GiB' })).toThrow(/NORMALIZER_MAX_LABEL_BYTES/);
  });

  it('bounds every Redis command, 500 ms by default', () => {
    expect(loadConfig({}).backends.redisCommandTimeoutMs).toBe(500);
    expect(() => loadConfig({ REDIS_COMMAND_TIMEOUT_MS: '0' })).toThrow(/REDIS_COMMAND_TIMEOUT_MS/);
  });
});

describe('edge socket deadlines', () => {
  it('default to seconds and are validated against each other, naming the keys', () => {
    const e = loadConfig({}).edge;
    expect([e.headersTimeoutMs, e.requestTimeoutMs, e.connectionTimeoutMs, e.keepAliveTimeoutMs]).toEqual([10_000, 30_000, 40_000, 5_000]);
    expect([e.minBodyBytesPerSecond, e.bodyGraceMs]).toEqual([1024, 5_000]);
    expect(() => loadConfig({ EDGE_HEADERS_TIMEOUT_MS: '20000', EDGE_REQUEST_TIMEOUT_MS: '10000' })).toThrow(/EDGE_HEADERS_TIMEOUT_MS .*EDGE_REQUEST_TIMEOUT_MS/);
    expect(() => loadConfig({ EDGE_CONNECTION_TIMEOUT_MS: '30000' })).toThrow(/EDGE_CONNECTION_TIMEOUT_MS .*EDGE_DOWNSTREAM_TIMEOUT_MS/);
    expect(() => loadConfig({ EDGE_MIN_BODY_BYTES_PER_SECOND: 'fast' })).toThrow(/EDGE_MIN_BODY_BYTES_PER_SECOND/);
    expect(() => loadConfig({ EDGE_KEEP_ALIVE_TIMEOUT_MS: '0' })).toThrow(/EDGE_KEEP_ALIVE_TIMEOUT_MS/);
    expect(loadConfig({ EDGE_MIN_BODY_BYTES_PER_SECOND: '4KiB', EDGE_BODY_GRACE_MS: '0' }).edge).toMatchObject({ minBodyBytesPerSecond: 4096, bodyGraceMs: 0 });
  });
});
