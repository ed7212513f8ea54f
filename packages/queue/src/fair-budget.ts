/**
 * An in-flight budget in bytes and entries, shared fairly between tenants.
 *
 * Below half of capacity anyone is admitted, so a lone tenant can use the whole budget. Above it,
 * a tenant is admitted only while it holds less than an equal share among the tenants currently
 * holding anything. A bursting tenant therefore hits its ceiling first and the quiet ones keep
 * getting through: the burst is shed, not the bystanders.
 *
 * State is one map entry per tenant *currently holding* budget, removed at zero, so its size is
 * bounded by the number of requests in flight.
 */
export interface BudgetLimits {
  maxBytes: number;
  maxEntries: number;
  /** Fraction of capacity below which fairness is not enforced. */
  uncontendedFraction?: number;
}

export type AcquireResult =
  | { ok: true; lease: Lease }
  | { ok: false; reason: 'budget_full' | 'tenant_share' | 'too_large' };

export interface Lease {
  readonly tenant: string;
  readonly bytes: number;
  readonly entries: number;
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
  private usedBytes = 0;
  private usedEntries = 0;
  private readonly holdings = new Map<string, Holding>();

  constructor(limits: BudgetLimits) {
    this.maxBytes = limits.maxBytes;
    this.maxEntries = limits.maxEntries;
    this.uncontended = limits.uncontendedFraction ?? 0.5;
  }

  tryAcquire(tenant: string, bytes: number, entries: number): AcquireResult {
    if (bytes > this.maxBytes || entries > this.maxEntries) return { ok: false, reason: 'too_large' };
    const nextBytes = this.usedBytes + bytes;
    const nextEntries = this.usedEntries + entries;
    if (nextBytes > this.maxBytes || nextEntries > this.maxEntries) return { ok: false, reason: 'budget_full' };

    const contended = nextBytes > this.maxBytes * this.uncontended || nextEntries > this.maxEntries * this.uncontended;
    const held = this.holdings.get(tenant);
    if (contended) {
      const active = this.holdings.size + (held ? 0 : 1);
      const shareBytes = this.maxBytes / active;
      const shareEntries = this.maxEntries / active;
      const tb = (held?.bytes ?? 0) + bytes;
      const te = (held?.entries ?? 0) + entries;
      // A tenant's first request is always admitted when it fits: a share of zero would starve it.
      if (held && (tb > shareBytes || te > shareEntries)) return { ok: false, reason: 'tenant_share' };
    }

    this.usedBytes = nextBytes;
    this.usedEntries = nextEntries;
    if (held) {
      held.bytes += bytes;
      held.entries += entries;
    } else {
      this.holdings.set(tenant, { bytes, entries });
    }
    let released = false;
    return {
      ok: true,
      lease: {
        tenant,
        bytes,
        entries,
        release: () => {
          if (released) return;
          released = true;
          this.give(tenant, bytes, entries);
        },
      },
    };
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

  snapshot(): BudgetSnapshot {
    return {
      bytes: this.usedBytes,
      entries: this.usedEntries,
      maxBytes: this.maxBytes,
      maxEntries: this.maxEntries,
      tenants: this.holdings.size,
    };
  }

  /** Fraction of the tighter of the two dimensions in use, 0..1. */
  utilization(): number {
    return Math.max(this.usedBytes / this.maxBytes, this.usedEntries / this.maxEntries);
  }
}
