/**
 * Waits for a condition, polling, with a bound: what tests use instead of a sleep that hopes the
 * machine was fast enough. The error names what was awaited and the last value seen.
 */
export async function waitUntil<T>(what: string, probe: () => T | Promise<T>, timeoutMs = 60_000, everyMs = 20): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  for (;;) {
    last = await probe();
    if (last !== undefined && last !== null && last !== false) return last as NonNullable<T>;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
