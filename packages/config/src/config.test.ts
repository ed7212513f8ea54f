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
});
