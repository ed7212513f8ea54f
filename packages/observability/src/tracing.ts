import { DiagLogLevel, ProxyTracerProvider, diag, propagation, trace, type DiagLogger } from '@opentelemetry/api';

export interface TracingOptions {
  /** resource service.name of every span this process exports. */
  serviceName: string;
  /** OTLP/HTTP base URL (e.g. http://collector:4318); spans go to `<endpoint>/v1/traces`. Unset: tracing is off. */
  endpoint: string | undefined;
  /**
   * Share (0..1) of traces this service starts itself that are recorded. A request that carries a
   * producer's traceparent follows that producer's sampled flag instead. Default 1.
   */
  sampleRatio?: number;
}

export interface Tracing {
  /** True when a tracer provider was registered and spans are exported. */
  readonly enabled: boolean;
  /** Exports the spans still queued and unregisters the provider. Idempotent; never rejects. */
  shutdown(): Promise<void>;
}

const DISABLED: Tracing = { enabled: false, shutdown: async () => undefined };

/** Batches bounded so a collector that is slow or down costs memory up to a cap, then drops spans. */
const BATCH = { maxQueueSize: 2048, maxExportBatchSize: 512, scheduledDelayMillis: 1000, exportTimeoutMillis: 5000 } as const;
/** Below Kubernetes' default 30 s grace period, so the final flush on SIGTERM can't hold the drain. */
const EXPORT_TIMEOUT_MS = 5000;
/** A collector that is down fails every export; one log line per interval is enough to notice. */
const DIAG_INTERVAL_MS = 30_000;

/**
 * Starts exporting spans over OTLP/HTTP (JSON) when `endpoint` is set: registers a tracer provider
 * and the W3C trace-context propagator globally, which `installServiceBasics` then finds when the
 * app is built — so call this first. Without an endpoint nothing is loaded or registered, and
 * services install no tracing hooks at all.
 *
 * No auto-instrumentation: its require hooks are unreliable under ESM + tsx, and the spans worth
 * having (one per hop, the log append) are created by our own code. No context manager either:
 * spans are parented explicitly from the request, so nothing needs AsyncLocalStorage (and its
 * async-hook cost on Node 20).
 */
export async function startTracing(opts: TracingOptions): Promise<Tracing> {
  if (!opts.endpoint) return DISABLED;
  // Loaded only when tracing is on: the SDK and exporter add ~150 ms to start-up otherwise.
  const [sdk, { OTLPTraceExporter }, { defaultResource, resourceFromAttributes }, { W3CTraceContextPropagator }] = await Promise.all([
    import('@opentelemetry/sdk-trace-base'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/core'),
  ]);
  diag.setLogger(diagLogger(opts.serviceName), { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true });

  const exporter = new OTLPTraceExporter({ url: tracesUrl(opts.endpoint), timeoutMillis: EXPORT_TIMEOUT_MS });
  const provider = new sdk.BasicTracerProvider({
    resource: defaultResource().merge(resourceFromAttributes({ 'service.name': opts.serviceName })),
    sampler: new sdk.ParentBasedSampler({ root: new sdk.TraceIdRatioBasedSampler(opts.sampleRatio ?? 1) }),
    spanProcessors: [new sdk.BatchSpanProcessor(exporter, BATCH)],
  });
  if (!trace.setGlobalTracerProvider(provider)) {
    await provider.shutdown();
    diag.disable();
    throw new Error('startTracing: a tracer provider is already registered in this process');
  }
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());

  let stopped: Promise<void> | undefined;
  return {
    enabled: true,
    shutdown: () =>
      (stopped ??= (async () => {
        try {
          await provider.shutdown();
        } catch (e) {
          // A collector that is down must not turn a clean drain into a failed exit.
          diag.error('flushing spans at shutdown failed', e);
        } finally {
          trace.disable();
          propagation.disable();
          diag.disable();
        }
      })()),
  };
}

// ProxyTracerProvider hands out this shared no-op provider until a real one is registered.
const NOOP_PROVIDER = new ProxyTracerProvider().getDelegate();

/** Whether a real tracer provider is registered globally (by startTracing, or by a test). */
export function tracerProviderRegistered(): boolean {
  const p = trace.getTracerProvider();
  return p instanceof ProxyTracerProvider ? p.getDelegate() !== NOOP_PROVIDER : true;
}

/** OTEL_EXPORTER_OTLP_ENDPOINT is a base URL; the traces path is appended to whatever path it has. */
export function tracesUrl(endpoint: string): string {
  return `${endpoint.replace(/\/+$/, '')}/v1/traces`;
}

/** SDK warnings (failed exports, dropped spans) as JSON lines like the services' own logs, rate-limited. */
function diagLogger(service: string): DiagLogger {
  let last = 0;
  let suppressed = 0;
  const write =
    (level: number) =>
    (message: string, ...args: unknown[]): void => {
      const now = Date.now();
      if (now - last < DIAG_INTERVAL_MS) {
        suppressed++;
        return;
      }
      last = now;
      const detail = args.map((a) => (a instanceof Error ? a.message : String(a))).join(' ').slice(0, 500);
      process.stderr.write(`${JSON.stringify({ level, time: now, service, msg: `tracing: ${message.slice(0, 500)}`, ...(detail ? { detail } : {}), ...(suppressed ? { suppressed } : {}) })}\n`);
      suppressed = 0;
    };
  const ignore = (): void => undefined;
  return { error: write(50), warn: write(40), info: ignore, debug: ignore, verbose: ignore };
}
