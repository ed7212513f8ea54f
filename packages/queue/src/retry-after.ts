/**
 * Retry-After seconds for a shed request. Jittered so that clients shed in the same instant don't
 * come back in the same instant; clamped so a client is never told to wait absurdly long.
 */
export function retryAfterSeconds(base = 1, maxSeconds = 30, random: () => number = Math.random): number {
  const jittered = base * (1 + random());
  return Math.max(1, Math.min(maxSeconds, Math.ceil(jittered)));
}
