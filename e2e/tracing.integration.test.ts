import { randomBytes } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROUTES } from '@ingest/contracts';
import type { DurableLog } from '@ingest/log';
import type { TelemetryStore } from '@ingest/storage';
import { logEntry, postIngest, startInProcessStack, type InProcessStack } from '@ingest/testkit';
// By path, as other e2e tests import packages the root package.json does not list.
import { startTracing, type Tracing } from '@ingest/observability';
import { MODES, modeEnv, readTopic, sharedStore, tenantId, type ModeEnv } from './helpers.ts';

/** The parts of an OTLP/JSON ExportTraceServiceRequest this test reads. */
interface OtlpAttribute {
  key: string;
  value: { stringValue?: string; intValue?: number | string; boolValue?: boolean };
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes?: OtlpAttribute[];
  status?: { code?: number };
}
interface OtlpRequest {
  resourceSpans?: Array<{ resource?: { attributes?: OtlpAttribute[] }; scopeSpans?: Array<{ scope?: { name?: string }; spans?: OtlpSpan[] }> }>;
}
interface ReceivedSpan extends OtlpSpan {
  scope: string;
  service: string | undefined;
}

/** OTLP span kind is the API's SpanKind + 1 (0 is UNSPECIFIED). */
const OTLP_KIND_INTERNAL = 1;
const OTLP_KIND_SERVER = 2;

const attr = (attrs: OtlpAttribute[] | undefined, key: string): string | number | boolean | undefined => {
  const v = attrs?.find((a) => a.key === key)?.value;
  if (v === undefined) return undefined;
  return v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : v.boolValue);
};

/** A stand-in collector: the real OTLP/HTTP route, keeping what it is sent. */
async function startReceiver(): Promise<{ url: string; spans: ReceivedSpan[]; contentTypes: string[]; close(): Promise<void> }> {
  const spans: ReceivedSpan[] = [];
  const contentTypes: string[] = [];
  const app: FastifyInstance = Fastify({ logger: false, bodyLimit: 64 * 1024 * 1024 });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  app.post('/v1/traces', async (req, reply) => {
    contentTypes.push(String(req.headers['content-type']));
    const raw = req.body as Buffer;
    const text = (req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw).toString();
    // Throws (and the test then finds no spans) if the exporter sent protobuf instead of JSON.
    const body = JSON.parse(text) as OtlpRequest;
    for (const rs of body.resourceSpans ?? []) {
      const service = attr(rs.resource?.attributes, 'service.name');
      for (const ss of rs.scopeSpans ?? []) {
        for (const s of ss.spans ?? []) spans.push({ ...s, scope: ss.scope?.name ?? '', service: typeof service === 'string' ? service : undefined });
      }
    }
    return reply.type('application/json').send({});
  });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return { url, spans, contentTypes, close: () => app.close() };
}

let store: TelemetryStore;
beforeAll(async () => {
  store = await sharedStore();
});
afterAll(async () => {
  await store?.close();
});

/** Sends two entries under a fresh producer trace, closes the stack and tracer, and returns the spans of that trace. */
async function tracedIngest(stack: InProcessStack, tracing: Tracing, receiver: Awaited<ReturnType<typeof startReceiver>>, log: DurableLog, tenant: string) {
  const key = await stack.tenant(tenant);
  const traceId = randomBytes(16).toString('hex');
  const producerSpan = randomBytes(8).toString('hex');
  const r = await postIngest(stack.edgeUrl, key, [logEntry(1), logEntry(2)], { headers: { traceparent: `00-${traceId}-${producerSpan}-01` } });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  const messages = (await readTopic(log, stack.config.backends.topic)).filter((x) => x.key === tenant);
  expect(messages).toHaveLength(2);
  // Servers closed first, so every onResponse hook has ended its span; shutdown then flushes.
  await stack.close();
  await tracing.shutdown();
  const inTrace = receiver.spans.filter((s) => s.traceId === traceId);
  const one = (scope: string, name: string): ReceivedSpan => {
    const found = inTrace.filter((s) => s.scope === scope && s.name === name);
    expect(found, `${scope} "${name}" among ${JSON.stringify(inTrace.map((s) => [s.scope, s.name]))}`).toHaveLength(1);
    return found[0] as ReceivedSpan;
  };
  return { traceId, producerSpan, messages, inTrace, one };
}

describe.each(MODES)('tracing across edge → normalizer → sink writer (%s log)', (mode) => {
  let m: ModeEnv;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let tracing: Tracing;
  let stack: InProcessStack;
  let log: DurableLog;

  beforeAll(async () => {
    m = await modeEnv(mode);
    receiver = await startReceiver();
    // Before the stack: services install their span hooks only if a provider is registered then.
    tracing = await startTracing({ serviceName: 'ingest-e2e', endpoint: receiver.url });
    stack = await startInProcessStack({ env: m.env, store });
    log = m.readLog(stack.dataDir);
  });
  afterAll(async () => {
    await log?.close();
    await stack?.close();
    await tracing?.shutdown();
    await receiver?.close();
    await m?.stop();
  });

  it("every hop is a server span in the producer's trace, each the child of the one before; the log carries the sink span", async () => {
    expect(tracing.enabled).toBe(true);
    const tenant = tenantId('traced');
    const { traceId, producerSpan, messages, inTrace, one } = await tracedIngest(stack, tracing, receiver, log, tenant);
    expect(receiver.contentTypes.length).toBeGreaterThan(0);
    for (const ct of receiver.contentTypes) expect(ct).toMatch(/^application\/json/);
    const edge = one('edge', 'POST /v2/ingest');
    const normalizer = one('normalizer', `POST ${ROUTES.normalize}`);
    const sink = one('sink-writer', `POST ${ROUTES.write}`);
    const append = one('sink-writer', 'log.append');
    expect(inTrace).toHaveLength(4);

    expect(edge.parentSpanId).toBe(producerSpan);
    expect(normalizer.parentSpanId).toBe(edge.spanId);
    expect(sink.parentSpanId).toBe(normalizer.spanId);
    expect(append.parentSpanId).toBe(sink.spanId);

    for (const s of [edge, normalizer, sink]) {
      expect(s.kind).toBe(OTLP_KIND_SERVER);
      expect(attr(s.attributes, 'http.request.method')).toBe('POST');
      expect(attr(s.attributes, 'http.response.status_code')).toBe(200);
      expect(s.service).toBe('ingest-e2e');
    }
    expect(append.kind).toBe(OTLP_KIND_INTERNAL);
    expect(attr(edge.attributes, 'http.route')).toBe('/v2/ingest');
    expect(attr(edge.attributes, 'ingest.tenant')).toBe(tenant);
    expect(attr(append.attributes, 'messaging.batch.message_count')).toBe(2);

    // A consumer of the log continues the trace under the sink writer's span, not the producer's.
    for (const msg of messages) expect(msg.headers['traceparent']).toBe(`00-${traceId}-${sink.spanId}-01`);
  });
});

// In one process the stages call each other directly: no server spans below the edge, but each
// stage is a span of its own in the same chain, and the log still carries the sink writer's.
describe('tracing through the one-process topology (embedded log)', () => {
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let tracing: Tracing;
  let stack: InProcessStack;
  let log: DurableLog;

  beforeAll(async () => {
    const m = await modeEnv('embedded');
    receiver = await startReceiver();
    tracing = await startTracing({ serviceName: 'ingest-e2e', endpoint: receiver.url });
    stack = await startInProcessStack({ env: m.env, store, topology: 'single' });
    log = m.readLog(stack.dataDir);
  });
  afterAll(async () => {
    await log?.close();
    await stack?.close();
    await tracing?.shutdown();
    await receiver?.close();
  });

  it('edge server span → normalizer stage → sink writer stage → log.append; the log carries the sink stage', async () => {
    const { traceId, producerSpan, messages, inTrace, one } = await tracedIngest(stack, tracing, receiver, log, tenantId('traced1'));
    const edge = one('edge', 'POST /v2/ingest');
    const normalizer = one('normalizer', 'normalizer normalize');
    const sink = one('sink-writer', 'sink-writer write');
    const append = one('sink-writer', 'log.append');
    expect(inTrace).toHaveLength(4);
    expect(edge.parentSpanId).toBe(producerSpan);
    expect(normalizer.parentSpanId).toBe(edge.spanId);
    expect(sink.parentSpanId).toBe(normalizer.spanId);
    expect(append.parentSpanId).toBe(sink.spanId);
    expect(edge.kind).toBe(OTLP_KIND_SERVER);
    for (const s of [normalizer, sink, append]) expect(s.kind).toBe(OTLP_KIND_INTERNAL);
    for (const msg of messages) expect(msg.headers['traceparent']).toBe(`00-${traceId}-${sink.spanId}-01`);
  });
});
