import { request } from 'node:http';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SpanKind, SpanStatusCode, propagation, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { ingestError } from '@ingest/contracts';
import { adminListener, installServiceBasics, traceChild, traceHeaders } from './http.ts';
import { createServiceMetrics } from './metrics.ts';
import { startTracing, tracerProviderRegistered, tracesUrl } from './tracing.ts';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT_ID = '00f067aa0ba902b7';
const PRODUCER = `00-${TRACE_ID}-${PARENT_ID}-01`;

/** The slow route: the test sees when it has the request and decides when it answers. */
const slow = { entered: false, done: false, release: (): void => undefined };

async function until(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function buildApp(): Promise<FastifyInstance> {
  const app = Fastify({ logger: false });
  installServiceBasics(app, {
    service: 'svc',
    metrics: createServiceMetrics('svc', { defaultMetrics: false }),
    readiness: () => ({ ready: true, checks: {} }),
    tenantOf: () => 'acme',
  });
  app.post('/internal/v2/thing', async (req) => {
    await traceChild(req, 'log.append', Promise.resolve(), { 'messaging.batch.message_count': 3 });
    return { next: traceHeaders(req) };
  });
  app.post('/internal/v2/slow', async () => {
    slow.entered = true;
    await new Promise<void>((r) => (slow.release = r));
    slow.done = true;
    return {};
  });
  app.post('/internal/v2/down', async () => {
    throw ingestError('INGEST_ERR_LOG_UNAVAILABLE', ['broker gone'], { retryAfterSeconds: 1 });
  });
  await app.ready();
  return app;
}

describe('without a tracer provider', () => {
  it('installs nothing and passes the caller traceparent on unchanged', async () => {
    expect(tracerProviderRegistered()).toBe(false);
    const app = await buildApp();
    const r = await app.inject({ method: 'POST', url: '/internal/v2/thing', headers: { traceparent: PRODUCER } });
    expect(r.json()).toEqual({ next: { traceparent: PRODUCER } });
    const none = await app.inject({ method: 'POST', url: '/internal/v2/thing' });
    expect(none.json()).toEqual({ next: {} });
    await app.close();
  });

  it('startTracing without an endpoint is a no-op with an idempotent shutdown', async () => {
    const t = await startTracing({ serviceName: 'svc', endpoint: undefined });
    expect(t.enabled).toBe(false);
    expect(tracerProviderRegistered()).toBe(false);
    await t.shutdown();
    await t.shutdown();
  });

  it('appends the traces path to the OTLP base URL', () => {
    expect(tracesUrl('http://collector:4318')).toBe('http://collector:4318/v1/traces');
    expect(tracesUrl('http://collector:4318/otel/')).toBe('http://collector:4318/otel/v1/traces');
  });
});

describe('with a tracer provider', () => {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  let app: FastifyInstance;

  beforeAll(async () => {
    trace.setGlobalTracerProvider(provider);
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    app = await buildApp();
  });
  afterAll(async () => {
    await app?.close();
    trace.disable();
    propagation.disable();
    await provider.shutdown();
  });
  beforeEach(() => exporter.reset());

  const serverSpans = () => exporter.getFinishedSpans().filter((s) => s.kind === SpanKind.SERVER);

  it('a request with a traceparent gives one server span, child of the caller; traceHeaders names that span', async () => {
    const r = await app.inject({ method: 'POST', url: '/internal/v2/thing', headers: { traceparent: PRODUCER } });
    expect(r.statusCode).toBe(200);
    const spans = serverSpans();
    expect(spans).toHaveLength(1);
    const s = spans[0]!;
    expect(s.name).toBe('POST /internal/v2/thing');
    expect(s.spanContext().traceId).toBe(TRACE_ID);
    expect(s.parentSpanContext?.spanId).toBe(PARENT_ID);
    expect(s.parentSpanContext?.isRemote).toBe(true);
    expect(s.attributes).toMatchObject({
      'http.request.method': 'POST',
      'http.route': '/internal/v2/thing',
      'http.response.status_code': 200,
      'ingest.tenant': 'acme',
    });
    expect(s.attributes['ingest.error.code']).toBeUndefined();
    expect(s.status.code).toBe(SpanStatusCode.UNSET);
    expect(s.instrumentationScope.name).toBe('svc');

    const next = (r.json() as { next: { traceparent?: string } }).next.traceparent;
    expect(next).toBe(`00-${TRACE_ID}-${s.spanContext().spanId}-01`);

    const child = exporter.getFinishedSpans().find((x) => x.name === 'log.append');
    expect(child?.parentSpanContext?.spanId).toBe(s.spanContext().spanId);
    expect(child?.spanContext().traceId).toBe(TRACE_ID);
    expect(child?.attributes['messaging.batch.message_count']).toBe(3);
  });

  it('a 5xx marks the span as an error with the catalog code', async () => {
    const r = await app.inject({ method: 'POST', url: '/internal/v2/down', headers: { traceparent: PRODUCER } });
    expect(r.statusCode).toBe(503);
    const [s] = serverSpans();
    expect(s?.status.code).toBe(SpanStatusCode.ERROR);
    expect(s?.attributes['http.response.status_code']).toBe(503);
    expect(s?.attributes['ingest.error.code']).toBe('INGEST_ERR_LOG_UNAVAILABLE');
  });

  it('without a traceparent the server span starts a new trace', async () => {
    const r = await app.inject({ method: 'POST', url: '/internal/v2/thing' });
    const [s] = serverSpans();
    expect(s?.parentSpanContext).toBeUndefined();
    expect(s?.spanContext().traceId).not.toBe(TRACE_ID);
    expect((r.json() as { next: { traceparent?: string } }).next.traceparent).toBe(`00-${s?.spanContext().traceId}-${s?.spanContext().spanId}-01`);
  });

  it('a producer that did not sample is followed: nothing exported, the trace id still passed on', async () => {
    const r = await app.inject({ method: 'POST', url: '/internal/v2/thing', headers: { traceparent: `00-${TRACE_ID}-${PARENT_ID}-00` } });
    expect(exporter.getFinishedSpans()).toHaveLength(0);
    const next = (r.json() as { next: { traceparent?: string } }).next.traceparent;
    expect(next).toMatch(new RegExp(`^00-${TRACE_ID}-[0-9a-f]{16}-00$`));
    expect(next).not.toContain(PARENT_ID);
  });

  it('a client that hangs up still ends the span, once', async () => {
    const url = new URL(await app.listen({ host: '127.0.0.1', port: 0 }));
    // node:http rather than fetch: destroying the request closes the socket at once.
    const sent = request({ host: url.hostname, port: url.port, path: '/internal/v2/slow', method: 'POST', headers: { traceparent: PRODUCER } });
    sent.on('error', () => undefined);
    sent.end();
    await until('the handler to have the request', () => slow.entered);
    sent.destroy();
    await until('the aborted span to end', () => serverSpans().length > 0);
    // The handler answers after the hang-up; that late response must not end the span again.
    slow.release();
    await until('the handler to return', () => slow.done);
    for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
    const spans = serverSpans();
    expect(spans).toHaveLength(1);
    expect(spans[0]?.attributes['ingest.client_aborted']).toBe(true);
    expect(spans[0]?.parentSpanContext?.spanId).toBe(PARENT_ID);
  });

  it('probes and scrapes are not traced', async () => {
    for (const url of ['/healthz', '/readyz']) expect((await app.inject({ method: 'GET', url, headers: { traceparent: PRODUCER } })).statusCode).toBe(200);
    for (const url of ['/metrics', '/status']) expect((await adminListener(app).inject({ method: 'GET', url, headers: { traceparent: PRODUCER } })).statusCode).toBe(200);
    expect(exporter.getFinishedSpans()).toHaveLength(0);
  });
});
