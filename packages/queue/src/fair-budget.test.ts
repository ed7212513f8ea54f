import { describe, expect, it } from 'vitest';
import { FairBudget, type Lease } from './fair-budget.ts';
import { retryAfterSeconds } from './retry-after.ts';

function must(r: ReturnType<FairBudget['tryAcquire']>): Lease {
  if (!r.ok) throw new Error(`expected admission, got ${r.reason}`);
  return r.lease;
}

describe('FairBudget', () => {
  it('lets a lone tenant use all but the reserve, then refuses it at its share, not as "full"', () => {
    const b = new FairBudget({ maxBytes: 100, maxEntries: 1000 });
    for (let i = 0; i < 9; i++) must(b.tryAcquire('a', 10, 1));
    expect(b.tryAcquire('a', 1, 1)).toEqual({ ok: false, reason: 'tenant_share' });
    // The reserve is what a tenant holding nothing gets in with.
    must(b.tryAcquire('b', 10, 1));
    expect(b.tryAcquire('c', 1, 1)).toEqual({ ok: false, reason: 'budget_full' });
  });

  it('with reserveFraction 0 a lone tenant can fill the budget (the old behaviour, opt-in)', () => {
    const b = new FairBudget({ maxBytes: 100, maxEntries: 1000, reserveFraction: 0 });
    for (let i = 0; i < 10; i++) must(b.tryAcquire('a', 10, 1));
    expect(b.tryAcquire('a', 1, 1)).toEqual({ ok: false, reason: 'tenant_share' });
  });

  it('rejects a request bigger than the whole budget as too_large', () => {
    const b = new FairBudget({ maxBytes: 100, maxEntries: 10 });
    expect(b.tryAcquire('a', 101, 1)).toEqual({ ok: false, reason: 'too_large' });
    expect(b.tryAcquire('a', 1, 11)).toEqual({ ok: false, reason: 'too_large' });
  });

  it('under contention caps the heavy tenant at its share while a quiet one still gets in', () => {
    const b = new FairBudget({ maxBytes: 100, maxEntries: 1000 });
    must(b.tryAcquire('quiet', 5, 1));
    // heavy takes until it hits its share (50 of 100 with two tenants active)
    let heavy = 0;
    while (b.tryAcquire('heavy', 5, 1).ok) heavy += 5;
    expect(heavy).toBeLessThanOrEqual(50);
    expect(heavy).toBeGreaterThanOrEqual(40);
    expect(b.tryAcquire('heavy', 5, 1)).toEqual({ ok: false, reason: 'tenant_share' });
    must(b.tryAcquire('quiet', 5, 1));
  });

  it('release returns capacity exactly once and forgets idle tenants', () => {
    const b = new FairBudget({ maxBytes: 100, maxEntries: 100 });
    const l = must(b.tryAcquire('a', 60, 6));
    expect(b.snapshot()).toMatchObject({ bytes: 60, entries: 6, tenants: 1 });
    l.release();
    l.release();
    expect(b.snapshot()).toMatchObject({ bytes: 0, entries: 0, tenants: 0 });
  });

  it('limits on entries as well as bytes', () => {
    const b = new FairBudget({ maxBytes: 1_000_000, maxEntries: 10 });
    must(b.tryAcquire('a', 1, 9));
    expect(b.tryAcquire('a', 1, 1)).toEqual({ ok: false, reason: 'tenant_share' });
    must(b.tryAcquire('b', 1, 1));
    expect(b.tryAcquire('c', 1, 1)).toEqual({ ok: false, reason: 'budget_full' });
  });

  it('a lease grows with what was read, under the same share rule, and shrinks freely', () => {
    const b = new FairBudget({ maxBytes: 100, maxEntries: 100 });
    const heavy = must(b.tryAcquire('heavy', 1, 0));
    // Many small reads: the heavy tenant grows until its share, never to "full".
    let grown = 1;
    while (heavy.tryResize(grown + 1, 0).ok) grown++;
    expect(grown).toBe(90);
    expect(heavy.tryResize(91, 0)).toEqual({ ok: false, reason: 'tenant_share' });
    expect(heavy.bytes).toBe(90);
    const quiet = must(b.tryAcquire('quiet', 5, 1));
    // Two holders now: the heavy tenant's share is 45, so it can't grow, but it may shrink.
    expect(heavy.tryResize(90, 1)).toEqual({ ok: false, reason: 'tenant_share' });
    expect(heavy.tryResize(40, 1)).toEqual({ ok: true });
    expect(b.snapshot()).toMatchObject({ bytes: 45, entries: 2, tenants: 2 });
    heavy.release();
    expect(heavy.tryResize(10, 0)).toEqual({ ok: false, reason: 'released' });
    quiet.release();
    expect(b.snapshot()).toMatchObject({ bytes: 0, entries: 0, tenants: 0 });
  });

  it('one tenant holding many small growing leases (slow uploads) leaves room for another', () => {
    const b = new FairBudget({ maxBytes: 1000, maxEntries: 1000 });
    const leases: Lease[] = [];
    for (let i = 0; i < 200; i++) {
      const r = b.tryAcquire('slow', 4, 0);
      if (r.ok) leases.push(r.lease);
    }
    for (let round = 0; round < 10; round++) for (const l of leases) l.tryResize(l.bytes + 4, 0);
    expect(b.heldBy('slow').bytes).toBeLessThanOrEqual(900);
    for (let i = 0; i < 20; i++) must(b.tryAcquire('quiet', 5, 1)).release();
  });
});

describe('retryAfterSeconds', () => {
  it('is at least 1 and clamped', () => {
    expect(retryAfterSeconds(0, 30, () => 0)).toBe(1);
    expect(retryAfterSeconds(100, 30, () => 0.9)).toBe(30);
    expect(retryAfterSeconds(2, 30, () => 0.5)).toBe(3);
  });
});
