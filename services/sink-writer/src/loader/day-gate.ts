/**
 * Serializes live-table writers per day partition. The loader enters the days a batch touches for
 * the length of its insert; a promote holds one day across its check and its
 * `REPLACE PARTITION`: an insert landing between the two would be replaced away (lost) even
 * though its offsets get committed. Holding waits for inserts already in flight on that day and
 * keeps new ones out until released; inserts into other days are not delayed.
 */
export class DayGate {
  private readonly holds = new Map<number, Promise<void>>();
  private readonly inflight = new Map<number, number>();
  private readonly drainWaiters = new Map<number, Array<() => void>>();

  /** Waits while any of `days` is held, then marks them in flight until the returned release. */
  async enter(days: ReadonlySet<number>): Promise<() => void> {
    for (;;) {
      let held: Promise<void> | undefined;
      for (const d of days) {
        held = this.holds.get(d);
        if (held) break;
      }
      if (held === undefined) break;
      await held;
    }
    for (const d of days) this.inflight.set(d, (this.inflight.get(d) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      for (const d of days) {
        const n = (this.inflight.get(d) ?? 1) - 1;
        if (n > 0) {
          this.inflight.set(d, n);
          continue;
        }
        this.inflight.delete(d);
        const waiters = this.drainWaiters.get(d);
        this.drainWaiters.delete(d);
        for (const w of waiters ?? []) w();
      }
    };
  }

  /** Keeps the loader out of `day` until the returned release; resolves once in-flight inserts there finished. */
  async hold(day: number): Promise<() => void> {
    for (let h = this.holds.get(day); h !== undefined; h = this.holds.get(day)) await h;
    let open!: () => void;
    this.holds.set(day, new Promise<void>((r) => (open = r)));
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      this.holds.delete(day);
      open();
    };
    while ((this.inflight.get(day) ?? 0) > 0) {
      await new Promise<void>((r) => {
        const list = this.drainWaiters.get(day) ?? [];
        list.push(r);
        this.drainWaiters.set(day, list);
      });
    }
    return release;
  }
}

const DAY_MS = 86_400_000;

/** The yyyymmdd partitions (toYYYYMMDD(ts), UTC) of the rows' timestamps. */
export function daysOf(rows: ReadonlyArray<{ ts: number }>): Set<number> {
  const epochDays = new Set<number>();
  for (const r of rows) epochDays.add(Math.floor(r.ts / DAY_MS));
  const days = new Set<number>();
  for (const e of epochDays) {
    const d = new Date(e * DAY_MS);
    days.add(d.getUTCFullYear() * 10_000 + (d.getUTCMonth() + 1) * 100 + d.getUTCDate());
  }
  return days;
}
