/**
 * The fixed workload of `pnpm bench` (documented in BENCHMARKS.md): POST /v2/ingest, JSON arrays
 * of 500 entries of about 400 bytes each, a seeded mix of the five entry types with labels, every
 * entry with its own id. The same seed gives the same bytes on every machine, apart from the ids
 * and the timestamps, which are taken when the payloads are built.
 */

export const WORKLOAD = {
  path: '/v2/ingest',
  entriesPerRequest: 500,
  connections: 8,
  /** Distinct pre-built request bodies, sent round-robin. */
  templates: 32,
  seed: 20261122,
} as const;

/** mulberry32: a tiny, well-known 32-bit PRNG; good enough to vary content, and deterministic. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const APPS = ['checkout', 'search', 'billing', 'auth', 'inventory', 'gateway'];
const TEAMS = ['payments', 'platform', 'growth', 'core-api'];
const REGIONS = ['eu-west-1', 'eu-central-1', 'us-east-1', 'ap-south-1'];
const LEVELS = ['debug', 'info', 'info', 'info', 'warn', 'error'];
const ROUTES = ['/api/v1/orders', '/api/v1/cart/items', '/api/v2/search', '/api/v1/users/me', '/healthz', '/api/v1/payments'];
const METRICS: Array<[string, string]> = [
  ['http.server.duration', 'ms'],
  ['process.memory.rss', 'bytes'],
  ['db.pool.wait', 'us'],
  ['queue.depth', ''],
  ['cpu.utilization', 'ratio'],
];
const CHECKS = ['db', 'redis', 'disk', 'upstream-payments', 'dns'];
const HEALTH = ['ok', 'ok', 'ok', 'degraded', 'down'];
const ALERTS: Array<[string, string]> = [
  ['DiskAlmostFull', 'warning'],
  ['HighErrorRate', 'error'],
  ['LatencySLOBurn', 'critical'],
  ['CertificateExpiry', 'info'],
];

/**
 * One entry of the mix (without its id). About 400 bytes of JSON once the id is added; the unit
 * test holds the average to that.
 */
export function makeEntry(rng: () => number, i: number, now: number): Record<string, unknown> {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)] as T;
  const hex = (n: number) => Array.from({ length: n }, () => Math.floor(rng() * 16).toString(16)).join('');
  const app = pick(APPS);
  const region = pick(REGIONS);
  const labels = {
    env: 'prod',
    region,
    zone: `${region}${pick(['a', 'b', 'c'])}`,
    namespace: `shop-${app}`,
    team: pick(TEAMS),
    pod: `${app}-${hex(6)}-${hex(5)}`,
    version: `1.${Math.floor(rng() * 40)}.${Math.floor(rng() * 10)}`,
  };
  // Half the entries carry ISO timestamps, half epoch ms: producers send both.
  const ts = now - Math.floor(rng() * 60_000);
  const timestamp = i % 2 === 0 ? ts : new Date(ts).toISOString();
  const base = { timestamp, app, source: `host-${Math.floor(rng() * 200)}`, labels };
  switch (i % 5) {
    case 0:
      return {
        type: 'log',
        ...base,
        data: { level: pick(LEVELS), message: `${pick(['GET', 'POST', 'PUT'])} ${pick(ROUTES)}/${Math.floor(rng() * 1e6)} ${pick([200, 200, 201, 404, 500])} in ${Math.floor(rng() * 900)} ms trace=${hex(32)} user=${hex(12)}` },
      };
    case 1: {
      const [name, unit] = pick(METRICS);
      return { type: 'metric', ...base, data: { name, value: Math.round(rng() * 1e6) / 100, unit, kind: 'gauge', host_cpu: `cpu${Math.floor(rng() * 8)}`, scope: 'app' } };
    }
    case 2:
      return { type: 'event', ...base, data: { name: pick(['deploy', 'config_change', 'scale_out', 'feature_flag']), attributes: { actor: `user-${hex(6)}`, commit: hex(40), ticket: `OPS-${Math.floor(rng() * 9999)}` } } };
    case 3:
      return { type: 'health', ...base, data: { status: pick(HEALTH), check: pick(CHECKS), latencyMs: Math.floor(rng() * 250), message: `probe ${hex(8)} from ${pick(REGIONS)} answered after retries=${Math.floor(rng() * 3)}` } };
    default: {
      const [name, severity] = pick(ALERTS);
      return { type: 'alert', ...base, data: { name, severity, state: 'firing', summary: `${name} on ${app} in ${labels.region}: threshold crossed for 5m (value ${Math.round(rng() * 1000) / 10})` } };
    }
  }
}

/** Stands for the request's token inside a template; no generated field can contain '~'. */
const SLOT = '~~req~~';

/**
 * Request bodies made before the clock starts. Each template is split where the ids go, so a
 * request costs one `join` with a fresh token: unique ids without JSON work in the generator.
 */
export class RequestBodies {
  private readonly pieces: string[][];
  private seq = 0;
  readonly entriesPerRequest: number;
  /** Average body size in bytes (ASCII, so characters = bytes). */
  readonly bodyBytes: number;

  constructor(
    private readonly runTag: string,
    o: { seed?: number; entriesPerRequest?: number; templates?: number; now?: number } = {},
  ) {
    const rng = mulberry32(o.seed ?? WORKLOAD.seed);
    const now = o.now ?? Date.now();
    this.entriesPerRequest = o.entriesPerRequest ?? WORKLOAD.entriesPerRequest;
    const templates = o.templates ?? WORKLOAD.templates;
    this.pieces = [];
    let bytes = 0;
    for (let t = 0; t < templates; t++) {
      const entries = Array.from({ length: this.entriesPerRequest }, (_, i) => ({ id: `${SLOT}-${i}`, ...makeEntry(rng, t * this.entriesPerRequest + i, now) }));
      const json = JSON.stringify(entries);
      this.pieces.push(json.split(SLOT));
      bytes += json.length;
    }
    // The token is longer than the slot by a few characters; close enough for an average.
    this.bodyBytes = Math.round(bytes / templates);
  }

  /** The next body; ids are `<run tag>.<request number>-<index>`, unique within this object. */
  next(): string {
    const n = this.seq++;
    return (this.pieces[n % this.pieces.length] as string[]).join(`${this.runTag}.${n.toString(36)}`);
  }
}
