export interface AuthFailureLimits {
  /** Failed authentications per address per window before the address is refused; 0: no limit. */
  maxFailures: number;
  windowMs: number;
  /** Addresses remembered at once; the least recently failing is forgotten first. */
  maxAddresses: number;
}

interface Window {
  start: number;
  failures: number;
}

/**
 * Failed authentications per client address, in fixed windows. An address that reaches the limit
 * is refused (429) until its window ends, whatever key it sends: otherwise it could go on guessing
 * at full speed, its guesses just answered differently. A valid key from any other address costs
 * one map lookup, never a wait.
 *
 * Memory is one small record per address that failed recently, at most `maxAddresses` of them: the
 * map is kept in order of last failure (re-inserted on each), so the oldest goes first when full.
 */
export class AuthFailureLimiter {
  private readonly windows = new Map<string, Window>();

  constructor(
    private readonly limits: AuthFailureLimits,
    private readonly now: () => number = Date.now,
  ) {}

  /** Seconds until `address` may try again; 0 when it is not refused. */
  retryAfterSeconds(address: string): number {
    if (this.limits.maxFailures === 0 || this.windows.size === 0) return 0;
    const w = this.windows.get(address);
    if (!w) return 0;
    const left = w.start + this.limits.windowMs - this.now();
    if (left <= 0) {
      this.windows.delete(address);
      return 0;
    }
    return w.failures >= this.limits.maxFailures ? Math.ceil(left / 1000) : 0;
  }

  /** Counts a failure; true when this one reached the limit (the address is refused from now on). */
  fail(address: string): boolean {
    if (this.limits.maxFailures === 0) return false;
    const t = this.now();
    let w = this.windows.get(address);
    if (w) this.windows.delete(address);
    if (!w || t - w.start >= this.limits.windowMs) w = { start: t, failures: 0 };
    w.failures++;
    this.windows.set(address, w);
    if (this.windows.size > this.limits.maxAddresses) {
      const oldest = this.windows.keys().next();
      if (!oldest.done) this.windows.delete(oldest.value);
    }
    return w.failures === this.limits.maxFailures;
  }

  /** Addresses remembered now (bounded by maxAddresses). */
  get size(): number {
    return this.windows.size;
  }
}
