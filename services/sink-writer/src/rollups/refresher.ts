import { markerClock, readWatermark, recomputeMarked, writeWatermark, type TelemetryStore } from '@ingest/storage';

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
}

export interface RollupStatus {
  watermarkMs: number | undefined;
  lastCycle: RefreshCycle | undefined;
  lastError: string | undefined;
}

const DEFAULT_CHUNK_MS = 10 * 60_000;

/**
 * Keeps telemetry_counts_1m and telemetry_metrics_1m equal to `telemetry FINAL` by recomputing
 * the minutes the view marked. One cycle at a time; a cycle that has more to read than one chunk
 * runs the next at once, otherwise the next waits `intervalMs`. Every cycle is idempotent, so two
 * sink writers refreshing the same store do the work twice, never wrong.
 */
export class RollupRefresher {
  private watermark: number | undefined;
  private lastCycle: RefreshCycle | undefined;
  private lastError: string | undefined;
  private running: Promise<RefreshCycle | undefined> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly chunkMs: number;

  constructor(
    private readonly client: ClickHouseClient,
    private readonly opts: RollupRefresherOptions,
  ) {
    this.chunkMs = opts.chunkMs ?? DEFAULT_CHUNK_MS;
  }

  start(): void {
    this.schedule(0);
  }

  /** Runs one cycle now (after the one in progress, if any); for promote, tests and operators. */
  async refreshNow(): Promise<RefreshCycle | undefined> {
    while (this.running) await this.running.catch(() => undefined);
    if (this.closed) return undefined;
    return this.runCycle();
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
      this.runCycle().then(
        (c) => this.schedule(c && c.toMs < c.nowMs ? 0 : this.opts.intervalMs),
        () => this.schedule(this.opts.intervalMs),
      );
    }, ms);
    this.timer.unref();
  }

  private runCycle(): Promise<RefreshCycle | undefined> {
    const p = this.cycle().then(
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

  private async cycle(): Promise<RefreshCycle | undefined> {
    const started = performance.now();
    this.watermark ??= (await readWatermark(this.client)) ?? 0;
    // Markers up to settleMs behind the watermark are read again: an insert that began before the
    // last cycle may have committed after it.
    const floor = Math.max(0, this.watermark - this.opts.settleMs);
    const { nowMs, firstMarkMs } = await markerClock(this.client, floor);
    if (firstMarkMs === undefined) {
      await this.advance(nowMs);
      return { fromMs: floor, toMs: nowMs, ms: performance.now() - started, nowMs };
    }
    // An empty stretch (a refresher that was down while nothing arrived) is skipped, not walked.
    const fromMs = Math.max(floor, firstMarkMs - 1);
    const toMs = Math.min(nowMs, fromMs + this.chunkMs);
    await recomputeMarked(this.client, fromMs, toMs);
    await this.advance(toMs);
    return { fromMs, toMs, ms: performance.now() - started, nowMs };
  }

  private async advance(ms: number): Promise<void> {
    if (this.watermark !== undefined && ms <= this.watermark) return;
    await writeWatermark(this.client, ms);
    this.watermark = ms;
  }
}
