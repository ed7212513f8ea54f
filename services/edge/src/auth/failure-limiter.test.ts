import { describe, expect, it } from 'vitest';
import { AuthFailureLimiter } from './failure-limiter.ts';

describe('AuthFailureLimiter', () => {
  it('refuses an address after N failures until its window ends, with the seconds left', () => {
    let t = 0;
    const l = new AuthFailureLimiter({ maxFailures: 3, windowMs: 10_000, maxAddresses: 100 }, () => t);
    expect([l.fail('a'), l.fail('a')]).toEqual([false, false]);
    expect(l.retryAfterSeconds('a')).toBe(0);
    expect(l.fail('a')).toBe(true);
    expect(l.retryAfterSeconds('a')).toBe(10);
    expect(l.retryAfterSeconds('b')).toBe(0);
    t = 7_500;
    expect(l.retryAfterSeconds('a')).toBe(3);
    t = 10_000;
    expect(l.retryAfterSeconds('a')).toBe(0);
    expect(l.size).toBe(0);
  });

  it('stays bounded when failures come from many addresses, forgetting the oldest first', () => {
    let t = 0;
    const l = new AuthFailureLimiter({ maxFailures: 2, windowMs: 60_000, maxAddresses: 100 }, () => t);
    l.fail('blocked');
    l.fail('blocked');
    for (let i = 0; i < 99; i++) l.fail(`x${i}`);
    expect(l.size).toBe(100);
    expect(l.retryAfterSeconds('blocked')).toBeGreaterThan(0);
    t = 1;
    l.fail('one-more');
    expect(l.size).toBe(100);
    expect(l.retryAfterSeconds('blocked')).toBe(0);
  });

  it('with a limit of 0 counts nothing', () => {
    const l = new AuthFailureLimiter({ maxFailures: 0, windowMs: 1000, maxAddresses: 10 });
    for (let i = 0; i < 100; i++) expect(l.fail('a')).toBe(false);
    expect(l.retryAfterSeconds('a')).toBe(0);
    expect(l.size).toBe(0);
  });
});
