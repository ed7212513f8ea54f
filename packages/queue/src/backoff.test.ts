import { describe, expect, it } from 'vitest';
import { backoffMs } from './backoff.ts';

const O = { initialMs: 100, maxMs: 10_000 };

describe('backoffMs', () => {
  it('doubles from initialMs per retry and stops at maxMs (no jitter)', () => {
    const waits = [1, 2, 3, 4, 5, 6, 7, 8, 50, 1_000_000].map((r) => backoffMs(r, { ...O, jitter: 'none' }));
    expect(waits).toEqual([100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000, 10_000]);
    expect(backoffMs(0, { ...O, jitter: 'none' })).toBe(100);
    expect(backoffMs(-3, { ...O, jitter: 'none' })).toBe(100);
  });

  it('equal jitter (the default) stays within [d/2, d] at both ends of the random draw', () => {
    for (const [retry, d] of [[1, 100], [4, 800], [9, 10_000], [400, 10_000]] as const) {
      expect(backoffMs(retry, O, () => 0)).toBe(d / 2);
      expect(backoffMs(retry, O, () => 0.999_999)).toBe(d);
    }
  });

  it('spreads retries of the same number across the range, never outside it', () => {
    const waits = Array.from({ length: 2000 }, () => backoffMs(5, O));
    expect(Math.min(...waits)).toBeGreaterThanOrEqual(800);
    expect(Math.max(...waits)).toBeLessThanOrEqual(1600);
    // 801 possible values; a constant or a narrow band would be no jitter at all.
    expect(new Set(waits).size).toBeGreaterThan(300);
  });
});
