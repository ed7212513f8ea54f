import { beforeAll, describe, expect, it } from 'vitest';
import { OTLPLogExporter as HttpLogExporter } from '@opentelemetry/exporter-logs-otlp-http';
import { OTLPLogExporter as ProtoLogExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { OTLPMetricExporter as HttpMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPMetricExporter as ProtoMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { InMemoryLogRecordExporter, LoggerProvider, SimpleLogRecordProcessor, type ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { TelemetryStore } from '@ingest/storage';
import type { InProcessStack } from '@ingest/testkit';
import { useTenantStack } from './helpers.ts';

interface Row {
  type: string;
  app: string;
  name: string;
  value: number | null;
  unit: string;
  level: string;
  message: string;
  labels: Record<string, string>;
  data: string;
}

async function rows(store: TelemetryStore, tenant: string): Promise<Row[]> {
  const rs = await store.client.query({
    query: 'SELECT type, app, name, value, unit, level, message, labels, data FROM telemetry FINAL WHERE tenant_id = {t:String} ORDER BY type, name, message',
    query_params: { t: tenant },
    format: 'JSONEachRow',
  });
  return rs.json<Row>();
}

async function logRecords(tag: string, n: number): Promise<ReadableLogRecord[]> {
  const exporter = new InMemoryLogRecordExporter();
  const provider = new LoggerProvider({ resource: resourceFromAttributes({ 'service.name': 'checkout', 'host.name': 'web-1' }), processors: [new SimpleLogRecordProcessor({ exporter })] });
  const logger = provider.getLogger('orders');
  for (let i = 0; i < n; i++) {
    logger.emit({ severityNumber: 17, severityText: 'ERROR', body: `${tag} record ${i}`, attributes: { 'http.route': '/pay', i } });
  }
  await provider.forceFlush();
  return exporter.getFinishedLogRecords();
}

async function metrics(): Promise<ResourceMetrics> {
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
  const provider = new MeterProvider({ resource: resourceFromAttributes({ 'service.name': 'checkout' }), readers: [reader] });
  const meter = provider.getMeter('orders');
  meter.createCounter('orders.placed', { unit: '{order}' }).add(3, { region: 'eu' });
  const h = meter.createHistogram('order.latency', { unit: 'ms', advice: { explicitBucketBoundaries: [100] } });
  h.record(40);
  h.record(160);
  const { resourceMetrics } = await reader.collect();
  await provider.shutdown();
  return resourceMetrics;
}

/** SUCCESS of @opentelemetry/core. */
const SUCCESS = 0;

function exported(send: (cb: (r: { code: number; error?: Error }) => void) => void): Promise<{ code: number; error?: Error }> {
  return new Promise((resolve) => send(resolve));
}

describe('OTLP/HTTP from the OpenTelemetry JS exporters', () => {
  let store: TelemetryStore;
  let stack: InProcessStack;
  let key: string;
  const tenant = `otlp-${process.pid}`;

  useTenantStack(tenant, (s) => ({ store, stack, key } = s));

  it('logs from the JSON and the protobuf exporter land exactly once with the mapped fields', async () => {
    const headers = { authorization: `Bearer ${key}` };
    const json = new HttpLogExporter({ url: `${stack.edgeUrl}/v1/logs`, headers });
    // gzip on the wire for the protobuf exporter (CompressionAlgorithm.GZIP of otlp-exporter-base, not a dependency here).
    const proto = new ProtoLogExporter({ url: `${stack.edgeUrl}/v1/logs`, headers, compression: 'gzip' as never });
    expect((await exported((cb) => json.export(logRecordsSync.json, cb))).code).toBe(SUCCESS);
    expect((await exported((cb) => proto.export(logRecordsSync.proto, cb))).code).toBe(SUCCESS);
    // The same records again, as an exporter's retry would send them: nothing more at rest.
    expect((await exported((cb) => proto.export(logRecordsSync.proto, cb))).code).toBe(SUCCESS);
    await Promise.all([json.shutdown(), proto.shutdown()]);

    await stack.waitLoaded();
    const logs = (await rows(store, tenant)).filter((r) => r.type === 'log');
    expect(logs.map((r) => r.message)).toEqual(['json record 0', 'json record 1', 'json record 2', 'proto record 0', 'proto record 1']);
    for (const r of logs) {
      expect(r).toMatchObject({ app: 'checkout', level: 'error', labels: { 'host.name': 'web-1', 'http.route': '/pay' } });
      expect(JSON.parse(r.data)).toMatchObject({ severity_text: 'ERROR', scope: 'orders' });
    }
    const stats = await stack.rowStats(tenant);
    expect(stats.final).toBe(5);
    expect(stats.distinctIds).toBe(5);
  });

  it('metrics from the JSON and the protobuf exporter become metric entries (histograms as count/sum/min/max)', async () => {
    const headers = { authorization: `Bearer ${key}` };
    const rm = await metrics();
    const json = new HttpMetricExporter({ url: `${stack.edgeUrl}/v1/metrics`, headers });
    const proto = new ProtoMetricExporter({ url: `${stack.edgeUrl}/v1/metrics`, headers });
    expect((await exported((cb) => json.export(rm, cb))).code).toBe(SUCCESS);
    // The same points through the other encoding are the same entries: deduplicated at rest.
    expect((await exported((cb) => proto.export(rm, cb))).code).toBe(SUCCESS);
    await Promise.all([json.shutdown(), proto.shutdown()]);

    await stack.waitLoaded();
    const m = (await rows(store, tenant)).filter((r) => r.type === 'metric');
    expect(m.map((r) => [r.name, r.value, r.unit])).toEqual([
      ['order.latency.count', 2, ''],
      ['order.latency.max', 0.16, 's'],
      ['order.latency.min', 0.04, 's'],
      ['order.latency.sum', 0.2, 's'],
      ['orders.placed', 3, ''],
    ]);
    expect(m.find((r) => r.name === 'orders.placed')).toMatchObject({ app: 'checkout', labels: { region: 'eu' } });
    expect(JSON.parse(m.find((r) => r.name === 'order.latency.count')!.data)).toMatchObject({ bucket_counts: [1, 1], explicit_bounds: [100] });
  });

  it('a 429 from the edge makes the exporter retry, and nothing is lost', async () => {
    const slow = `otlp-429-${process.pid}`;
    // Four entries a second: the first batch of four takes the whole second's allowance, so the
    // exporter's first attempt right after it is refused with 429 and must come back for it.
    const slowKey = await stack.tenant(slow, { entriesPerSecond: 4 });
    const headers = { authorization: `Bearer ${slowKey}` };
    const records = await logRecords('retried', 4);
    const spend = JSON.stringify({ resourceLogs: [{ scopeLogs: [{ logRecords: [0, 1, 2, 3].map((i) => ({ body: { stringValue: `spend ${i}` } })) }] }] });
    const first = await fetch(`${stack.edgeUrl}/v1/logs`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: spend });
    expect(first.status).toBe(200);
    const refused = await fetch(`${stack.edgeUrl}/v1/logs`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: spend });
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(await refused.json()).toMatchObject({ code: 8, message: expect.stringContaining('INGEST_ERR_TENANT_ENTRY_RATE') });

    const exporter = new ProtoLogExporter({ url: `${stack.edgeUrl}/v1/logs`, headers, timeoutMillis: 30_000 });
    const before = await rejectedRequests(stack);
    expect((await exported((cb) => exporter.export(records, cb))).code).toBe(SUCCESS);
    await exporter.shutdown();
    await stack.waitLoaded();
    expect((await stack.rowStats(slow)).final).toBe(8);
    // The exporter did meet at least one 429 on the way (it retried rather than being lucky).
    expect(await rejectedRequests(stack)).toBeGreaterThan(before);
  });

  it('a bad key is 401 in the OTLP shape and names no tenant', async () => {
    for (const [ct, body] of [['application/json', '{}'], ['application/x-protobuf', Buffer.alloc(0)]] as const) {
      const r = await fetch(`${stack.edgeUrl}/v1/logs`, { method: 'POST', headers: { authorization: 'Bearer ik_live_nottherightkey000000000000', 'content-type': ct }, body });
      expect(r.status).toBe(401);
      expect(r.headers.get('content-type')).toContain(ct);
      const text = Buffer.from(await r.arrayBuffer()).toString('latin1');
      expect(text).toContain('INGEST_ERR_INVALID_API_KEY');
      expect(text).not.toContain(tenant);
    }
  });

  it('an undecodable body is 400 with a google.rpc.Status; traces are a clear 404', async () => {
    const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
    const bad = await fetch(`${stack.edgeUrl}/v1/logs`, { method: 'POST', headers, body: '{"resourceLogs": 7}' });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ code: 3, message: expect.stringContaining('INGEST_ERR_INVALID_PROTOBUF') });
    const traces = await fetch(`${stack.edgeUrl}/v1/traces`, { method: 'POST', headers, body: '{}' });
    expect(traces.status).toBe(404);
    expect(await traces.json()).toMatchObject({ code: 5, message: expect.stringContaining('INGEST_ERR_SIGNAL_NOT_SUPPORTED') });
  });

  it('a request of which nothing is taken is not a 200', async () => {
    const old = Date.now() - 30 * 24 * 3600 * 1000;
    const body = JSON.stringify({ resourceLogs: [{ scopeLogs: [{ logRecords: [{ timeUnixNano: `${old}000000`, body: { stringValue: 'too old' } }] }] }] });
    const r = await fetch(`${stack.edgeUrl}/v1/logs`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body });
    expect(r.status).toBe(400);
    expect(await r.json()).toMatchObject({ code: 3, message: expect.stringMatching(/INGEST_ERR_NO_VALID_ENTRIES.*INGEST_ERR_ENTRY_TIMESTAMP/) });
  });

  const logRecordsSync: { json: ReadableLogRecord[]; proto: ReadableLogRecord[] } = { json: [], proto: [] };
  beforeAll(async () => {
    logRecordsSync.json = await logRecords('json', 3);
    logRecordsSync.proto = await logRecords('proto', 2);
  });
});

async function rejectedRequests(stack: InProcessStack): Promise<number> {
  const text = await (await fetch(`${stack.edgeAdminUrl}/metrics`)).text();
  let n = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('ingest_rejected_requests_total') && line.includes('INGEST_ERR_TENANT_ENTRY_RATE')) n += Number(line.split(' ').pop());
  }
  return n;
}
