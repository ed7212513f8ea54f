import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * One registry per service instance (not prom-client's global one), so several services built in
 * one process — as tests do — never collide on metric names.
 */
export interface ServiceMetrics {
  registry: Registry;
  requests: Counter<'route' | 'status'>;
  requestDuration: Histogram<'route'>;
  /** Every entry that did not make it, by reason = its INGEST_ERR_ code (Mimir's discarded_samples). */
  discarded: Counter<'tenant' | 'reason'>;
  accepted: Counter<'tenant'>;
  /** Every request answered with an error, by its INGEST_ERR_ code — whole requests, not entries. */
  rejectedRequests: Counter<'tenant' | 'reason'>;
  inflightBytes: Gauge;
  inflightEntries: Gauge;
}

export function createServiceMetrics(service: string, opts: { defaultMetrics?: boolean } = {}): ServiceMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  return {
    registry,
    requests: new Counter({ name: 'ingest_http_requests_total', help: 'HTTP requests by route and status', labelNames: ['route', 'status'], registers: [registry] }),
    requestDuration: new Histogram({
      name: 'ingest_http_request_duration_seconds',
      help: 'HTTP request latency',
      labelNames: ['route'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    discarded: new Counter({ name: 'ingest_discarded_entries_total', help: 'Entries not accepted, by tenant and reason (an INGEST_ERR_ code)', labelNames: ['tenant', 'reason'], registers: [registry] }),
    accepted: new Counter({ name: 'ingest_accepted_entries_total', help: 'Entries accepted by this stage', labelNames: ['tenant'], registers: [registry] }),
    rejectedRequests: new Counter({ name: 'ingest_rejected_requests_total', help: 'Requests answered with an error, by tenant and reason (an INGEST_ERR_ code)', labelNames: ['tenant', 'reason'], registers: [registry] }),
    inflightBytes: new Gauge({ name: 'ingest_inflight_bytes', help: 'Bytes held by requests in flight in this stage', registers: [registry] }),
    inflightEntries: new Gauge({ name: 'ingest_inflight_entries', help: 'Entries held by requests in flight in this stage', registers: [registry] }),
  };
}
