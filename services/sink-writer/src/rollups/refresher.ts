import { MAX_BUCKETS_PER_STATEMENT, markedBuckets, markerClock, readWatermark, recomputeBuckets, writeWatermark, type MarkedBucket, type TelemetryStore } from '@ingest/storage';

type ClickHouseClient = TelemetryStore['client'];

export interface RollupRefresherOptions {
  intervalMs: number;
  /**
   * How long after its marker a minute is computed again. A marker is written when its insert
   * starts and seen when the insert commits; every insert that commits within this long of starting
   * is counted. Longer than the store's insert timeout.
   */
  settleMs: number;
  /** The most marker time one cycle reads, so a refresher that was down catches up in steps. */
  chunkMs?: number;
  onCycle?: (c: RefreshCycle) => void;
  onError?: (e: unknown) => void;
}

export interface RefreshCycle {
  /** Markers read: (fromMs, toMs] of the store's clock. */
  fromMs: number;
  toMs: number;
  ms: number;
  /** The store's clock when the cycle began; `toMs` below it means more to read. */
  nowMs: number;
  /** Buckets recomputed by this cycle. */
  computed: number;
}

export interface RollupStatus {
  watermarkMs: number | undefined;
  lastCycle: RefreshCycle | undefined;
  lastError: string | undefined;
}

const DEFAULT_CHUNK_MS = 10 * 60_000;
const MINUTE_MS = 60_000;
/** Buckets whose state one refresher remembers; beyond it, some are computed again (more work, never wrong). */
const MAX_TRACKED = 200_000;

interface Computed {
  /** The newest marker the computation saw. */
  lastMarkMs: number;
  /** Computed at least settleMs after that marker: every insert it marked had committed. */
  final: boolean;
}

/**
 * Keeps telemetry_counts_1m and telemetry_metrics_1m equal to `telemetry FINAL` by recomputing
 * the minutes the view marked. A bucket is computed when it has a marker newer than its last
 * computation, and once more settleMs after its newest marker (an insert marked before a computation
 * may have committed after it); the minute still being written is left until it ends, so a busy
 * minute is computed about twice, not every cycle. One cycle at a time; a cycle that has more to read
 * than one chunk runs the next at once, otherwise the next waits `intervalMs`. Every computation is
 * idempotent, so two sink writers refreshing the same store do the work twice, never wrong.
 */
export class RollupRefresher {
  private watermark: number | undefined;
  private lastCycle: RefreshCycle | undefined;
  private lastError: string | undefined;
  private running: Promise<RefreshCycle | undefined> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly chunkMs: number;
  private readonly computed = new Map<string, Computed>();

  constructor(
    private readonly client: ClickHouseClient,
    private readonly opts: RollupRefresherOptions,
  ) {
    this.chunkMs = opts.chunkMs ?? DEFAULT_CHUNK_MS;
  }

  start(): void {
    this.schedule(0);
  }

  /**
   * Runs one cycle now (after the one in progress, if any), the minute still being written
   * included: for operators and tests that want the rollups to show what is loaded.
   */
  async refreshNow(opts: { includeOpen?: boolean } = {}): Promise<RefreshCycle | undefined> {
    while (this.running) await this.running.catch(() => undefined);
    if (this.closed) return undefined;
    return this.runCycle(opts.includeOpen ?? true);
  }

  status(): RollupStatus {
    return { watermarkMs: this.watermark, lastCycle: this.lastCycle, lastError: this.lastError };
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }

  private schedule(ms: number): void {
    if (this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.running) return this.schedule(this.opts.intervalMs);
      this.runCycle(false).then(
        (c) => this.schedule(c && c.toMs < c.nowMs ? 0 : this.opts.intervalMs),
        () => this.schedule(this.opts.intervalMs),
      );
    }, ms);
    this.timer.unref();
  }

  private runCycle(includeOpen: boolean): Promise<RefreshCycle | undefined> {
    const p = this.cycle(includeOpen).then(
      (c) => {
        this.lastError = undefined;
        if (c) this.lastCycle = c;
        if (c) this.opts.onCycle?.(c);
        return c;
      },
      (e: unknown) => {
        this.lastError = (e as Error).message;
        this.opts.onError?.(e);
        throw e;
      },
    );
    this.running = p;
    const clear = () => {
      if (this.running === p) this.running = undefined;
    };
    p.then(clear, clear);
    return p;
  }

  private async cycle(includeOpen: boolean): Promise<RefreshCycle | undefined> {
    const started = performance.now();
    this.watermark ??= (await readWatermark(this.client)) ?? 0;
    // Markers are read again for settleMs and two intervals behind the watermark, so a bucket's
    // newest marker is still in view when its settled computation is due.
    const floor = Math.max(0, this.watermark - this.opts.settleMs - 2 * this.opts.intervalMs);
    const { nowMs, firstMarkMs } = await markerClock(this.client, floor);
    if (firstMarkMs === undefined) {
      this.computed.clear();
      await this.advance(nowMs);
      return { fromMs: floor, toMs: nowMs, ms: performance.now() - started, nowMs, computed: 0 };
    }
    // An empty stretch (a refresher that was down while nothing arrived) is skipped, not walked.
    const fromMs = Math.max(floor, firstMarkMs - 1);
    const toMs = Math.min(nowMs, fromMs + this.chunkMs);
    // The minute being written is left for later only while its markers are sure to stay in view.
    const openMinute = Math.floor(nowMs / MINUTE_MS) * 60;
    const defer = !includeOpen && this.opts.settleMs + this.opts.intervalMs >= MINUTE_MS;
    const seen = new Set<string>();
    let computed = 0;
    let after: MarkedBucket | undefined;
    for (;;) {
      const page = await markedBuckets(this.client, fromMs, toMs, MAX_BUCKETS_PER_STATEMENT, after);
      const due: Array<{ b: MarkedBucket; key: string; final: boolean }> = [];
      for (const b of page) {
        const key = `${b.tenant}\u0000${b.minute}`;
        seen.add(key);
        if (defer && b.minute === openMinute) continue;
        const prev = this.computed.get(key);
        const settled = nowMs >= b.lastMarkMs + this.opts.settleMs;
        if (prev === undefined || b.lastMarkMs > prev.lastMarkMs || (!prev.final && settled)) due.push({ b, key, final: settled });
      }
      await recomputeBuckets(this.client, due.map((d) => d.b));
      computed += due.length;
      for (const d of due) if (this.computed.size < MAX_TRACKED || this.computed.has(d.key)) this.computed.set(d.key, { lastMarkMs: d.b.lastMarkMs, final: d.final });
      after = page[page.length - 1];
      if (page.length < MAX_BUCKETS_PER_STATEMENT || !after) break;
    }
    // What left the window will not be read again: forget it, so the map holds the window only.
    for (const key of this.computed.keys()) if (!seen.has(key)) this.computed.delete(key);
    await this.advance(toMs);
    return { fromMs, toMs, ms: performance.now() - started, nowMs, computed };
  }

  private async advance(ms: number): Promise<void> {
    if (this.watermark !== undefined && ms <= this.watermark) return;
    await writeWatermark(this.client, ms);
    this.watermark = ms;
  }
}
