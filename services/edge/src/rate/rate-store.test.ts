import { describe, expect, it } from 'vitest';
import { MemoryRateStore } from './rate-store.ts';

describe('MemoryRateStore token bucket', () => {
  it('admits up to the burst, then refuses with the time until the request fits', async () => {
    let now = 0;
    const s = new MemoryRateStore(() => now);
    expect((await s.take('t', 60, 100, 100)).ok).toBe(true);
    const r = await s.take('t', 60, 100, 100);
    expect(r.ok).toBe(false);
    expect(r.retryAfterMs).toBe(200); // 20 tokens short at 100/s
    now += 200;
    expect((await s.take('t', 60, 100, 100)).ok).toBe(true);
    await s.close();
  });

  it('lets a request larger than the burst through a full bucket, leaving debt', async () => {
    let now = 0;
    const s = new MemoryRateStore(() => now);
    expect((await s.take('t', 250, 100, 100)).ok).toBe(true);
    const r = await s.take('t', 1, 100, 100);
    expect(r.ok).toBe(false);
    expect(r.retryAfterMs).toBe(1510); // 150 of debt + 1 token at 100/s
    now += 2000;
    expect((await s.take('t', 1, 100, 100)).ok).toBe(true);
    await s.close();
  });

  it('keeps tenants apart', async () => {
    const s = new MemoryRateStore(() => 0);
    expect((await s.take('a', 100, 100, 100)).ok).toBe(true);
    expect((await s.take('a', 1, 100, 100)).ok).toBe(false);
    expect((await s.take('b', 100, 100, 100)).ok).toBe(true);
    await s.close();
  });
});
