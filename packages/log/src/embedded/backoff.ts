/** Exponential backoff without jitter: one process owns the log, so there is no herd to spread. */
export function backoffMs(attempt: number, initialMs: number, maxMs: number): number {
  return Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
}
