import { readFileSync } from 'node:fs';

/**
 * The soft open-file limit of this process (`ulimit -n`), from /proc/self/limits; undefined where
 * there is no such file or the limit is unlimited. Read once at start: the connection caps are
 * derived from it.
 */
export function readOpenFileLimit(limitsFile = '/proc/self/limits'): number | undefined {
  let text: string;
  try {
    text = readFileSync(limitsFile, 'utf8');
  } catch {
    return undefined;
  }
  const m = /^Max open files\s+(\S+)/m.exec(text);
  const soft = m?.[1];
  if (soft === undefined || !/^\d+$/.test(soft)) return undefined;
  return Number(soft);
}

/**
 * The inbound connection cap to use: the configured one, but well below the open-file limit.
 * Each connection is a descriptor, and so is everything else the process opens (downstream pools,
 * Redis, log files, stdio, the event loop's own), so a quarter of the limit (at least 128, at most
 * half) is kept for those: reaching the limit makes accept() fail, and then new clients are reset
 * with nothing logged.
 */
export function effectiveMaxConnections(configured: number, openFileLimit: number | undefined): number {
  if (openFileLimit === undefined) return configured;
  const reserve = Math.min(Math.max(128, Math.ceil(openFileLimit / 4)), Math.floor(openFileLimit / 2));
  return Math.max(1, Math.min(configured, openFileLimit - reserve));
}
