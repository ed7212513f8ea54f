/**
 * A positive number given to a bench script as `--flag <text>`, or `fallback` when the flag is
 * absent. Anything else ends the script with status 2 and a line naming the flag: what a mistyped
 * option should get, not a stack trace. `integer` for counts (rounds, requests).
 */
export function positiveArg(prog: string, flag: string, text: string | undefined, fallback: number, opts: { integer?: boolean } = {}): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0 || (opts.integer === true && !Number.isInteger(n))) {
    console.error(`${prog}: --${flag} must be a positive ${opts.integer === true ? 'integer' : 'number'}, got "${text}"`);
    process.exit(2);
  }
  return n;
}
