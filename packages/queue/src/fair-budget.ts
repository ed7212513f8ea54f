/**
 * An in-flight budget in bytes and entries, shared fairly between tenants.
 *
 * Below half of capacity anyone is admitted. Above it, a tenant already holding budget is admitted
 * only while it stays within its share: an equal split, among the tenants currently holding
 * anything, of the capacity minus a reserve kept for tenants that hold nothing yet. So one tenant
 * can never make the budget "full" for the others: it is refused at its share (`tenant_share`)
 * while a tenant arriving fresh still finds the reserve. `budget_full` is only answered once the
 * share check has passed, i.e. when the tenants together, each within its share, fill it.
 *
 * A lease can grow (`tryResize`) under the same rules, so a caller can charge what it has actually
 * read instead of reserving a declared or maximum size up front.
 *
 * State is one map entry per tenant *currently holding* budget, removed at zero, so its size is
 * bounded by the number of requests in flight.
 */
export interface BudgetLimits {
  maxBytes: number;
  maxEntries: number;
  /** Fraction of capacity below which fairness is not enforced. */
  uncontendedFraction?: number;
  /**
   * Fraction of capacity that tenants already holding budget can't take from tenants that hold
   * none (default 0.1): a lone heavy tenant tops out at 90%, and a newcomer always fits.
   */
  reserveFraction?: number;
}

export type RefusalReason = 'budget_full' | 'tenant_share' | 'too_large';

export type AcquireResult = { ok: true; lease: Lease } | { ok: false; reason: RefusalReason };

export type ResizeResult = { ok: true } | { ok: false; reason: RefusalReason | 'released' };

export interface Lease {
  readonly tenant: string;
  /** What the lease holds now (changes with tryResize). */
  readonly bytes: number;
  readonly entries: number;
  /**
   * Changes the reservation to exactly `bytes` and `entries`. Shrinking always succeeds; growing
   * is admitted like a new acquisition of the difference. On refusal the lease is unchanged.
   */
  tryResize(bytes: number, entries: number): ResizeResult;
  /** Returns the reservation; a second call does nothing. */
  release(): void;
}

interface Holding {
  bytes: number;
  entries: number;
}

export interface BudgetSnapshot {
  bytes: number;
  entries: number;
  maxBytes: number;
  maxEntries: number;
  tenants: number;
}

export class FairBudget {
  private readonly maxBytes: number;
  private readonly maxEntries: number;
  private readonly uncontended: number;
  private readonly shareable: number;
  private usedBytes = 0;
  private usedEntries = 0;
  private readonly holdings = new Map<string, Holding>();

  constructor(limits: BudgetLimits) {
    this.maxBytes = limits.maxBytes;
    this.maxEntries = limits.maxEntries;
    this.uncontended = limits.uncontendedFraction ?? 0.5;
    this.shareable = 1 - (limits.reserveFraction ?? 0.1);
  }

  tryAcquire(tenant: string, bytes: number, entries: number): AcquireResult {
    const refused = this.admit(tenant, bytes, entries);
    if (refused) return { ok: false, reason: refused };
    this.take(tenant, bytes, entries);
    return { ok: true, lease: new BudgetLease(this, tenant, bytes, entries) };
  }

  /** Why `tenant` can't take `bytes` and `entries` more right now, or undefined if it can. */
  private admit(tenant: string, bytes: number, entries: number): RefusalReason | undefined {
    if (bytes > this.maxBytes || entries > this.maxEntries) return 'too_large';
    const held = this.holdings.get(tenant);
    const tb = (held?.bytes ?? 0) + bytes;
    const te = (held?.entries ?? 0) + entries;
    const nextBytes = this.usedBytes + bytes;
    const nextEntries = this.usedEntries + entries;
    const contended = nextBytes > this.maxBytes * this.uncontended || nextEntries > this.maxEntries * this.uncontended;
    // The share first: a tenant at its share hears so even when the budget is also full, and the
    // reserve it can't touch is what lets the others in.
    if (contended && held) {
      const holders = this.holdings.size;
      if (tb > (this.maxBytes * this.shareable) / holders || te > (this.maxEntries * this.shareable) / holders) return 'tenant_share';
    }
    if (nextBytes > this.maxBytes || nextEntries > this.maxEntries) return 'budget_full';
    return undefined;
  }

  private take(tenant: string, bytes: number, entries: number): void {
    this.usedBytes += bytes;
    this.usedEntries += entries;
    const h = this.holdings.get(tenant);
    if (h) {
      h.bytes += bytes;
      h.entries += entries;
    } else if (bytes > 0 || entries > 0) {
      this.holdings.set(tenant, { bytes, entries });
    }
  }

  private give(tenant: string, bytes: number, entries: number): void {
    this.usedBytes -= bytes;
    this.usedEntries -= entries;
    const h = this.holdings.get(tenant);
    if (!h) return;
    h.bytes -= bytes;
    h.entries -= entries;
    if (h.bytes <= 0 && h.entries <= 0) this.holdings.delete(tenant);
  }

  /** @internal for BudgetLease */
  resize(lease: BudgetLease, bytes: number, entries: number): ResizeResult {
    const db = bytes - lease.bytes;
    const de = entries - lease.entries;
    // Shrink first, so growing one dimension while shrinking the other is judged on the result.
    const shrinkBytes = Math.max(0, -db);
    const shrinkEntries = Math.max(0, -de);
    const growBytes = Math.max(0, db);
    const growEntries = Math.max(0, de);
    this.give(lease.tenant, shrinkBytes, shrinkEntries);
    const refused = growBytes > 0 || growEntries > 0 ? this.admit(lease.tenant, growBytes, growEntries) : undefined;
    if (refused) {
      this.take(lease.tenant, shrinkBytes, shrinkEntries);
      return { ok: false, reason: refused };
    }
    this.take(lease.tenant, growBytes, growEntries);
    return { ok: true };
  }

  /** @internal for BudgetLease */
  returnLease(lease: BudgetLease): void {
    this.give(lease.tenant, lease.bytes, lease.entries);
  }

  snapshot(): BudgetSnapshot {
    return {
      bytes: this.usedBytes,
      entries: this.usedEntries,
      maxBytes: this.maxBytes,
      maxEntries: this.maxEntries,
      tenants: this.holdings.size,
    };
  }

  /** What one tenant holds now (zeros when nothing). */
  heldBy(tenant: string): { bytes: number; entries: number } {
    const h = this.holdings.get(tenant);
    return { bytes: h?.bytes ?? 0, entries: h?.entries ?? 0 };
  }

  /** Fraction of the tighter of the two dimensions in use, 0..1. */
  utilization(): number {
    return Math.max(this.usedBytes / this.maxBytes, this.usedEntries / this.maxEntries);
  }
}

class BudgetLease implements Lease {
  private released = false;
  constructor(
    private readonly budget: FairBudget,
    readonly tenant: string,
    public bytes: number,
    public entries: number,
  ) {}

  tryResize(bytes: number, entries: number): ResizeResult {
    if (this.released) return { ok: false, reason: 'released' };
    const r = this.budget.resize(this, bytes, entries);
    if (r.ok) {
      this.bytes = bytes;
      this.entries = entries;
    }
    return r;
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.budget.returnLease(this);
  }
}
