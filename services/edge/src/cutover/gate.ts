import type { FastifyReply, FastifyRequest } from 'fastify';
import { HEADERS, INGEST_VERSIONS, ingestError } from '@ingest/contracts';
import type { ServiceMetrics } from '@ingest/observability';
import { cutoverActive, PolledFile, readCutoverFile, routeOf, type CutoverDoc, type TenantRoute } from '@ingest/tenants';
import { LegacyProxy, type LegacyHealth } from './legacy-proxy.ts';

/** Header the load balancer puts on its mirror copy of a request still served by legacy. */
export const MIRROR_HEADER = 'x-ingest-mirror';

export interface CutoverOptions {
  /** The cut-over set (cutover.json beside tenants.json). */
  file: string;
  /** Where requests for tenants that are not cut over are forwarded. */
  legacyUrl?: string;
  /** How often the file is checked for changes (ms); the CLI waits for edges to catch up. */
  reloadMs?: number;
  legacyTimeoutMs?: number;
  maxLegacyInflight?: number;
}

export type Decision = 'live' | 'mirror' | 'legacy';

interface DecisionCounter {
  inc(labels: { tenant: string; decision: Decision }, value?: number): void;
}
type DecisionCounterClass = new (c: { name: string; help: string; labelNames: string[]; registers: Array<ServiceMetrics['registry']> }) => DecisionCounter;

/**
 * What the edge does with one authenticated request. `route` is undefined when no migration is
 * configured (no tenant in the set — no file, or an empty one — and no legacy pipeline): then
 * everything is v2, as before cutover.
 * A mirror copy only ever reaches the mirror table — its original already went to legacy — so it
 * can neither be lost from nor doubled into an authoritative place, whatever the LB's config age.
 */
export function decide(route: TenantRoute | undefined, mirrorCopy: boolean): Decision {
  if (mirrorCopy) return 'mirror';
  if (route === undefined) return 'live';
  return route === 'v2' ? 'live' : 'legacy';
}

/** The cut-over file as the edge sees it; a broken file keeps the last good set. */
export class CutoverWatcher {
  private readonly file: PolledFile<CutoverDoc | undefined>;

  constructor(file: string, reloadMs: number) {
    this.file = new PolledFile(file, reloadMs, readCutoverFile);
  }

  start(): Promise<void> {
    return this.file.start();
  }

  reload(): Promise<void> {
    return this.file.reload();
  }

  get lastError(): string | undefined {
    return this.file.lastError;
  }

  private get doc(): CutoverDoc | undefined {
    return this.file.current;
  }

  /**
   * True when a tenant is mirrored or on v2 — or the file could not be read, which must not mean
   * "all v2". An empty set is no migration (see cutoverActive).
   */
  active(): boolean {
    return cutoverActive(this.doc) || !this.file.loadedOnce;
  }

  route(tenant: string): TenantRoute {
    return this.doc ? routeOf(this.doc, tenant) : 'legacy';
  }

  generation(): number {
    return this.doc?.generation ?? 0;
  }

  close(): void {
    this.file.close();
  }
}

/**
 * The edge's half of the cutover: it enforces the same set the load balancer routes by. The LB
 * may run an older or newer set for a moment around a change; whichever way it routed, the edge
 * sends a request for a tenant that is not cut over to legacy whole, and marks what it keeps with
 * the version the rest of the pipeline acts on (live, or mirror → mirror table).
 */
export class CutoverGate {
  private readonly watcher: CutoverWatcher;
  private readonly legacy: LegacyProxy | undefined;
  private readonly decisions: DecisionCounter;
  private closed = false;
  private probe: { at: number; result: Promise<LegacyHealth> } | undefined;

  constructor(private readonly o: CutoverOptions, limits: { timeoutMs: number; maxBodyBytes: number }, metrics: ServiceMetrics) {
    this.watcher = new CutoverWatcher(o.file, o.reloadMs ?? 1000);
    this.legacy = o.legacyUrl
      ? new LegacyProxy(o.legacyUrl, { timeoutMs: o.legacyTimeoutMs ?? limits.timeoutMs, maxInflight: o.maxLegacyInflight ?? 512, maxBodyBytes: limits.maxBodyBytes })
      : undefined;
    // The edge package has no direct prom-client dependency (adding one needs an install), so the
    // Counter class is taken from a metric the service already has; same class, same registry.
    const CounterClass = metrics.accepted.constructor as unknown as DecisionCounterClass;
    this.decisions = new CounterClass({
      name: 'ingest_cutover_decisions_total',
      help: 'Requests by what the edge did with them: live (v2 authoritative), mirror (mirror copy), legacy (forwarded)',
      labelNames: ['tenant', 'decision'],
      registers: [metrics.registry],
    });
  }

  start(): Promise<void> {
    return this.watcher.start();
  }

  /** Undefined while no migration is configured: the edge then behaves exactly as before cutover. */
  private routeOf(tenant: string): TenantRoute | undefined {
    if (!this.watcher.active() && !this.legacy) return undefined;
    return this.watcher.route(tenant);
  }

  /**
   * Runs in the auth hook, after the tenant is known and before rate limits or the body: true means
   * the request was answered here (by legacy) and the v2 path must not touch it.
   */
  async divert(req: FastifyRequest, reply: FastifyReply, tenant: string): Promise<boolean> {
    const d = decide(this.routeOf(tenant), req.headers[MIRROR_HEADER] === '1');
    this.decisions.inc({ tenant, decision: d });
    if (d !== 'legacy') {
      // What travels to the log is the edge's decision, never a version the client claimed.
      req.headers[HEADERS.version] = d === 'mirror' ? INGEST_VERSIONS.mirror : INGEST_VERSIONS.live;
      return false;
    }
    if (!this.legacy) {
      // Not cut over and nowhere to forward: refuse rather than take it, so nothing is split.
      throw ingestError('INGEST_ERR_DEPENDENCY_UNAVAILABLE', ['legacy pipeline (tenant not cut over; LEGACY_URL unset)', 1], { retryAfterSeconds: 1 });
    }
    const a = await this.legacy.forward(req);
    // send() of a Buffer ends the response at once, so fastify's hook chain sees it as sent and stops.
    void reply.code(a.status).headers(a.headers).header('x-ingest-route', 'legacy').send(a.body);
    return true;
  }

  /**
   * This edge's view of legacy, for `ingestctl cutover`'s plan: a change that would make the edge
   * forward tenants to a legacy it cannot reach is refused there. Probed at most once a second,
   * however often /status is polled; concurrent callers share one probe.
   */
  private legacyHealth(): Promise<LegacyHealth> | undefined {
    if (!this.legacy) return undefined;
    const now = Date.now();
    if (!this.probe || now - this.probe.at > 1000) this.probe = { at: now, result: this.legacy.probe(2000) };
    return this.probe.result;
  }

  async snapshot(): Promise<Record<string, unknown>> {
    const health = await this.legacyHealth();
    return {
      enforcing: this.routeOf('-') !== undefined,
      file: this.o.file,
      generation: this.watcher.generation(),
      legacyUrl: this.legacy?.url ?? null,
      legacy: health ? { configured: true, url: this.legacy?.url ?? null, ...health } : { configured: false, url: null, reachable: null, error: 'LEGACY_URL is not set' },
      legacyInflight: this.legacy?.inFlight() ?? 0,
      ...(this.watcher.lastError ? { error: this.watcher.lastError } : {}),
    };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.watcher.close();
    this.legacy?.close();
  }
}
