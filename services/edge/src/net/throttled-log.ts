/**
 * Logs an event at most once per interval, with how many were not logged since: a flood of
 * refused connections or failed keys must be visible in the log without becoming the flood.
 */
export class ThrottledLog {
  private last = Number.NEGATIVE_INFINITY;
  private suppressed = 0;

  constructor(
    private readonly intervalMs: number,
    private readonly write: (fields: Record<string, unknown>, suppressed: number) => void,
    private readonly now: () => number = Date.now,
  ) {}

  event(fields: Record<string, unknown>): void {
    const t = this.now();
    if (t - this.last < this.intervalMs) {
      this.suppressed++;
      return;
    }
    this.last = t;
    const n = this.suppressed;
    this.suppressed = 0;
    this.write(fields, n);
  }
}
