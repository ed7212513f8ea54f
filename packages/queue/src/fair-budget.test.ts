import { describe, expect, it } from 'vitest';
import { FairBudget, type Lease } from './fair-budget.ts';
import { retryAfterSeconds } from './retry-after.ts';

function must(r: ReturnType<FairBudget['tryAcquire']>): Lease {
  if (!r.ok) throw new Error(`expected admission, got ${r.reason}`);
  return r.lease;
}

describe('FairBudget', () => {
  it('lets a lone tenant use the whole budget and then rejects', () => {
    const b = new FairBudget({ maxBytes: 100, maxEntries: 1000 });
    for (let i = 0; i < 10; i++) must(b.tryAcquire('a', 10, 1));
    expect(b.tryAcquire('a', 1, 1)).toEqual({ ok: false, reason: 'budget_full' });
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
    must(b.tryAcquire('a', 1, 10));
    expect(b.tryAcquire('b', 1, 1)).toEqual({ ok: false, reason: 'budget_full' });
  });
});

describe('retryAfterSeconds', () => {
  it('is at least 1 and clamped', () => {
    expect(retryAfterSeconds(0, 30, () => 0)).toBe(1);
    expect(retryAfterSeconds(100, 30, () => 0.9)).toBe(30);
    expect(retryAfterSeconds(2, 30, () => 0.5)).toBe(3);
  });
});
