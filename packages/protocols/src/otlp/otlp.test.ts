import { describe, expect, it } from 'vitest';
import { SeverityNumber } from '@opentelemetry/api';
import { InMemoryLogRecordExporter, LoggerProvider, SimpleLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { JsonLogsSerializer, JsonMetricsSerializer, ProtobufLogsSerializer, ProtobufMetricsSerializer } from '@opentelemetry/otlp-transformer';
import { decodeOtlpLogs } from './logs.ts';
import { decodeOtlpMetrics, ucumUnit } from './metrics.ts';
import { OTLP_TYPES, otlpEncoding } from './decode.ts';
import { otlpStatus, otlpSuccess } from './response.ts';

const NOW = Date.parse('2026-12-01T10:00:00Z');
const opts = { now: NOW, maxEntries: 1000, parseJson: (t: string) => JSON.parse(t) as unknown };
const resource = resourceFromAttributes({ 'service.name': 'checkout', 'deployment.environment': 'prod' });

function logRecords() {
  const exporter = new InMemoryLogRecordExporter();
  const provider = new LoggerProvider({ resource, processors: [new SimpleLogRecordProcessor({ exporter })] });
  const logger = provider.getLogger('orders', '1.2.0');
  logger.emit({
    timestamp: [Math.floor(NOW / 1000), 123_456_789],
    severityNumber: SeverityNumber.WARN,
    severityText: 'WARN',
    body: 'payment slow',
    attributes: { 'http.route': '/pay', attempt: 3 },
    context: undefined,
  });
  logger.emit({ timestamp: NOW, severityNumber: SeverityNumber.ERROR2, body: { reason: 'timeout', ms: 250 }, attributes: { big: 'x'.repeat(300) } });
  return exporter.getFinishedLogRecords();
}

describe('OTLP logs, from the OpenTelemetry JS serializers', () => {
  for (const [encoding, serializer] of [['protobuf', ProtobufLogsSerializer], ['json', JsonLogsSerializer]] as const) {
    it(`maps ${encoding} records to log entries`, () => {
      const body = serializer.serializeRequest(logRecords())!;
      const out = decodeOtlpLogs(body, encoding, opts);
      expect(out.refusals).toEqual([]);
      expect(out.origins).toEqual([0, 1]);
      const [a, b] = out.entries;
      expect(a).toMatchObject({
        type: 'log',
        timestamp: NOW + 123,
        app: 'checkout',
        labels: { 'deployment.environment': 'prod', 'http.route': '/pay', attempt: '3' },
        data: { message: 'payment slow', level: 'warn', severity_text: 'WARN', scope: 'orders', time_unix_nano: `${Math.floor(NOW / 1000)}123456789` },
      });
      expect(b).toMatchObject({ timestamp: NOW, data: { message: '{"reason":"timeout","ms":250}', level: 'error', body: { reason: 'timeout', ms: 250 } } });
      // A value over the label bound is kept in data, not dropped or refused.
      expect(b!.labels).not.toHaveProperty('big');
      expect(b!.data.attributes).toEqual({ big: 'x'.repeat(300) });
    });
  }

  it('keeps trace and span ids as hex in both encodings', () => {
    const traceId = '5b8efff798038103d269b633813fc60c';
    const spanId = 'eee19b7ec3c1b174';
    const json = JSON.stringify({ resourceLogs: [{ scopeLogs: [{ logRecords: [{ timeUnixNano: `${NOW}000000`, body: { stringValue: 'x' }, traceId, spanId }] }] }] });
    const fromJson = decodeOtlpLogs(Buffer.from(json), 'json', opts).entries[0]!;
    expect(fromJson.data).toMatchObject({ trace_id: traceId, span_id: spanId, message: 'x', level: 'info' });
    const type = OTLP_TYPES.logsRequest();
    const pb = type.encode(type.fromObject({ resourceLogs: [{ scopeLogs: [{ logRecords: [{ timeUnixNano: `${NOW}000000`, body: { stringValue: 'x' }, traceId: Buffer.from(traceId, 'hex'), spanId: Buffer.from(spanId, 'hex') }] }] }] })).finish();
    expect(decodeOtlpLogs(pb, 'protobuf', opts).entries[0]!.data).toEqual(fromJson.data);
  });

  it('refuses a body that is not the message with INGEST_ERR_INVALID_PROTOBUF', () => {
    expect(() => decodeOtlpLogs(Buffer.from([0x0a, 0xff, 0xff, 0xff]), 'protobuf', opts)).toThrow(expect.objectContaining({ code: 'INGEST_ERR_INVALID_PROTOBUF' }));
    expect(() => decodeOtlpLogs(Buffer.from('{"resourceLogs": 5}'), 'json', opts)).toThrow(expect.objectContaining({ code: 'INGEST_ERR_INVALID_PROTOBUF' }));
  });

  it('refuses more records than maxEntries whole', () => {
    const body = ProtobufLogsSerializer.serializeRequest(logRecords())!;
    expect(() => decodeOtlpLogs(body, 'protobuf', { ...opts, maxEntries: 1 })).toThrow(expect.objectContaining({ code: 'INGEST_ERR_TOO_MANY_ENTRIES' }));
  });
});

async function collectMetrics(): Promise<ResourceMetrics> {
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
  const provider = new MeterProvider({ resource, readers: [reader] });
  const meter = provider.getMeter('orders');
  meter.createCounter('http.requests', { unit: '{request}' }).add(5, { route: '/pay' });
  meter.createGauge('queue.depth', { unit: 'By' }).record(2048);
  const h = meter.createHistogram('http.duration', { unit: 'ms', advice: { explicitBucketBoundaries: [10, 100] } });
  h.record(5);
  h.record(50);
  h.record(500);
  meter.createUpDownCounter('big.int', { valueType: 1 /* INT */ }).add(7);
  const { resourceMetrics } = await reader.collect();
  await provider.shutdown();
  return resourceMetrics;
}

describe('OTLP metrics, from the OpenTelemetry JS serializers', () => {
  for (const [encoding, serializer] of [['protobuf', ProtobufMetricsSerializer], ['json', JsonMetricsSerializer]] as const) {
    it(`maps ${encoding} gauges, sums and histograms to metric entries`, async () => {
      const body = serializer.serializeRequest(await collectMetrics())!;
      const out = decodeOtlpMetrics(body, encoding, opts);
      expect(out.refusals).toEqual([]);
      const byName = new Map(out.entries.map((e) => [e.data.name as string, e]));
      expect(byName.get('http.requests')).toMatchObject({ app: 'checkout', labels: { route: '/pay', 'deployment.environment': 'prod' }, data: { value: 5, kind: 'counter', temporality: 'cumulative', monotonic: true, otel_unit: '{request}' } });
      expect(byName.get('http.requests')!.data).not.toHaveProperty('unit');
      expect(byName.get('queue.depth')).toMatchObject({ data: { value: 2048, unit: 'By', kind: 'gauge' } });
      expect(byName.get('http.duration.count')).toMatchObject({ data: { value: 3, kind: 'counter', bucket_counts: [1, 1, 1], explicit_bounds: [10, 100] } });
      expect(byName.get('http.duration.sum')).toMatchObject({ data: { value: 555, unit: 'ms' } });
      expect(byName.get('http.duration.min')).toMatchObject({ data: { value: 5, unit: 'ms', kind: 'gauge' } });
      expect(byName.get('http.duration.max')).toMatchObject({ data: { value: 500, unit: 'ms', kind: 'gauge' } });
      expect(byName.get('big.int')).toMatchObject({ data: { value: 7, kind: 'gauge', monotonic: false } });
    });
  }

  it('keeps the exact digits of an int point beyond 2^53, refuses NaN and staleness markers visibly', () => {
    const type = OTLP_TYPES.metricsRequest();
    const t = `${NOW}000000`;
    const body = type
      .encode(
        type.fromObject({
          resourceMetrics: [
            {
              scopeMetrics: [
                {
                  metrics: [
                    { name: 'exact', gauge: { dataPoints: [{ timeUnixNano: t, asInt: '9007199254740993' }] } },
                    { name: 'bad', gauge: { dataPoints: [{ timeUnixNano: t, asDouble: Number.NaN }, { timeUnixNano: t, asDouble: 1, flags: 1 }] } },
                  ],
                },
              ],
            },
          ],
        }),
      )
      .finish();
    const out = decodeOtlpMetrics(body, 'protobuf', opts);
    expect(out.entries).toHaveLength(1);
    expect(out.entries[0]!.timestamp).toBe(NOW);
    expect(out.entries[0]!.data).toMatchObject({ name: 'exact', value: 9007199254740992, value_exact: '9007199254740993' });
    expect(out.refusals.map((r) => [r.item, r.code])).toEqual([
      [1, 'INGEST_ERR_ENTRY_VALUE'],
      [2, 'INGEST_ERR_ENTRY_UNDECODABLE'],
    ]);
  });
});

describe('OTLP answers', () => {
  it('encodes partial_success and google.rpc.Status in the request encoding', () => {
    const pb = otlpSuccess('logs', 'protobuf', 2, 'two refused');
    expect(pb.contentType).toBe('application/x-protobuf');
    const decoded = OTLP_TYPES.logsResponse().toObject(OTLP_TYPES.logsResponse().decode(pb.body as Buffer), { longs: Number });
    expect(decoded).toEqual({ partialSuccess: { rejectedLogRecords: 2, errorMessage: 'two refused' } });
    expect(JSON.parse(otlpSuccess('metrics', 'json', 1, 'm').body as string)).toEqual({ partialSuccess: { rejectedDataPoints: '1', errorMessage: 'm' } });
    expect(otlpSuccess('logs', 'json', 0, '').body).toBe('{}');
    const status = otlpStatus('protobuf', 429, 'INGEST_ERR_TENANT_ENTRY_RATE', 'slow down');
    expect(OTLP_TYPES.status().toObject(OTLP_TYPES.status().decode(status.body as Buffer))).toEqual({ code: 8, message: 'INGEST_ERR_TENANT_ENTRY_RATE: slow down' });
    expect(otlpEncoding('application/x-protobuf; charset=x')).toBe('protobuf');
    expect(otlpEncoding('text/plain')).toBeUndefined();
  });
});

describe('OTLP zero values', () => {
  it('keeps a 0 gauge point and a summary whose sum is 0 (proto3 leaves zeros off the wire)', () => {
    const type = OTLP_TYPES.metricsRequest();
    const t = `${NOW}000000`;
    const body = type
      .encode(
        type.fromObject({
          resourceMetrics: [
            {
              scopeMetrics: [
                {
                  metrics: [
                    { name: 'zero', gauge: { dataPoints: [{ timeUnixNano: t, asDouble: 0 }, { timeUnixNano: t, asInt: '0' }] } },
                    { name: 'rpc', summary: { dataPoints: [{ timeUnixNano: t, count: '0', quantileValues: [{ quantile: 0.5, value: 0 }] }] } },
                  ],
                },
              ],
            },
          ],
        }),
      )
      .finish();
    for (const [encoding, bytes] of [['protobuf', body], ['json', Buffer.from(JSON.stringify(type.toObject(type.decode(body), { longs: String })))]] as const) {
      const out = decodeOtlpMetrics(bytes, encoding, opts);
      expect(out.refusals).toEqual([]);
      expect(out.entries.map((e) => [e.data.name, e.data.value])).toEqual([
        ['zero', 0],
        ['zero', 0],
        ['rpc.count', 0],
        ['rpc.sum', 0],
      ]);
    }
  });
});

describe('keys a prototype would take', () => {
  it('an attribute named __proto__ refuses the request as /v2/ingest refuses such a key', () => {
    const body = JSON.stringify({ resourceLogs: [{ scopeLogs: [{ logRecords: [{ body: { stringValue: 'x' }, attributes: [{ key: '__proto__', value: { stringValue: 'polluted' } }] }] }] }] });
    expect(() => decodeOtlpLogs(Buffer.from(body), 'json', opts)).toThrow(expect.objectContaining({ code: 'INGEST_ERR_FORBIDDEN_KEY' }));
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('UCUM units', () => {
  it('maps the units the table knows, and stores the others unitless instead of misreading them', () => {
    expect(['ms', 's', 'By', 'KiBy', 'By/s', 'Mbit/s', '%', 'Cel', 'Hz', 'min'].map(ucumUnit)).toEqual(['ms', 's', 'By', 'KiBy', 'By/s', 'Mbit/s', '%', 'Cel', 'Hz', 'min']);
    // UCUM m is the metre (the table's m is a minute); rates of counts and other units have no column unit.
    expect(['m', 'W', '1/s', '{packet}/s', '{request}', '1', ''].map(ucumUnit)).toEqual(['', '', '', '', '', '', '']);
  });
});
