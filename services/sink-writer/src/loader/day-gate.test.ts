import { describe, expect, it } from 'vitest';
import { DayGate, daysOf } from './day-gate.ts';

const settled = async (p: Promise<unknown>): Promise<boolean> => {
  let done = false;
  void p.then(() => (done = true));
  // Enough turns for any already-resolvable chain to finish; no timers involved.
  for (let i = 0; i < 10; i++) await Promise.resolve();
  return done;
};

describe('DayGate', () => {
  it('a hold waits for inserts in flight on its day, and keeps new ones out until released', async () => {
    const gate = new DayGate();
    const leaveA = await gate.enter(new Set([20261120]));
    const hold = gate.hold(20261120);
    expect(await settled(hold)).toBe(false);
    leaveA();
    const release = await hold;
    const entering = gate.enter(new Set([20261119, 20261120]));
    expect(await settled(entering)).toBe(false);
    // Another day is not delayed by the hold.
    (await gate.enter(new Set([20261121])))();
    release();
    const leaveB = await entering;
    leaveB();
    leaveB();
    // Released twice is released once: a later hold is not blocked by a phantom insert.
    (await gate.hold(20261120))();
  });

  it('daysOf gives the tables partition key, toYYYYMMDD(ts) in UTC', () => {
    expect([...daysOf([{ ts: Date.UTC(2026, 10, 20, 23, 59, 59, 999) }, { ts: Date.UTC(2026, 10, 21) }, { ts: Date.UTC(2026, 10, 20, 1) }])]).toEqual([20261120, 20261121]);
  });
});
