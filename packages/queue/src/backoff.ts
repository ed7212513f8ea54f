export interface BackoffOptions {
  /** The wait before the first retry. */
  initialMs: number;
  /** The wait never grows past this. */
  maxMs: number;
  /**
   * 'equal' (default): a wait drawn from [d/2, d], so clients that failed together do not all
   * retry together, while none retries sooner than half the step. 'none': exactly d, for a retry
   * loop only one process runs (the embedded log, a replay job), where there is no herd to spread.
   */
  jitter?: 'equal' | 'none';
}

/**
 * The wait in ms before retry number `retry` (1 for the first): d = initialMs doubled per retry,
 * capped at maxMs, then jittered. Retries below 1 count as the first.
 */
export function backoffMs(retry: number, o: BackoffOptions, random: () => number = Math.random): number {
  // The exponent is bounded so a retry counter that ran for days cannot overflow to Infinity/NaN.
  const d = Math.min(o.maxMs, o.initialMs * 2 ** Math.min(Math.max(retry, 1) - 1, 30));
  return (o.jitter ?? 'equal') === 'none' ? d : Math.round(d / 2 + (random() * d) / 2);
}
