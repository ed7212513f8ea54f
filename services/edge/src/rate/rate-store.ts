/**
 * Token buckets per tenant and dimension (entries/s, bytes/s). The interface is small so the edge
 * does not care whether state is local (one edge) or in Redis (every edge replica shares it).
 */
export interface TakeResult {
  ok: boolean;
  /** Tokens left after this take (may be 0). */
  remaining: number;
  /** When not ok: milliseconds until the request would fit. */
  retryAfterMs: number;
}

export interface RateStore {
  /**
   * Takes `amount` tokens from the bucket `key` that refills at `ratePerSec` up to `burst`.
   * A request larger than the burst is admitted when the bucket is full and leaves it in debt,
   * so a legitimately large batch is slowed, not refused forever.
   */
  take(key: string, amount: number, ratePerSec: number, burst: number): Promise<TakeResult>;
  close(): Promise<void>;
}

interface Bucket {
  tokens: number;
  at: number;
}

/** In-process buckets. Idle buckets (full again) are swept so the map stays bounded by active tenants. */
export class MemoryRateStore implements RateStore {
  private readonly buckets = new Map<string, Bucket>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly now: () => number = Date.now, private readonly maxBuckets = 100_000) {
    this.sweeper = setInterval(() => this.sweep(), 10_000);
    this.sweeper.unref();
  }

  async take(key: string, amount: number, ratePerSec: number, burst: number): Promise<TakeResult> {
    return this.takeSync(key, amount, ratePerSec, burst);
  }

  takeSync(key: string, amount: number, ratePerSec: number, burst: number): TakeResult {
    const now = this.now();
    let b = this.buckets.get(key);
    if (!b) {
      if (this.buckets.size >= this.maxBuckets) this.sweep();
      b = { tokens: burst, at: now };
      this.buckets.set(key, b);
    } else {
      b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * ratePerSec);
      b.at = now;
    }
    const need = Math.min(amount, burst);
    if (b.tokens >= need) {
      b.tokens -= amount;
      return { ok: true, remaining: Math.max(0, Math.floor(b.tokens)), retryAfterMs: 0 };
    }
    return { ok: false, remaining: Math.max(0, Math.floor(b.tokens)), retryAfterMs: Math.ceil(((need - b.tokens) / ratePerSec) * 1000) };
  }

  private sweep(): void {
    const now = this.now();
    // A bucket untouched for a minute is full again; dropping it changes nothing.
    for (const [k, b] of this.buckets) if (now - b.at > 60_000) this.buckets.delete(k);
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
  }
}
