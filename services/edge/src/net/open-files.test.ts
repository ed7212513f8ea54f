import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { effectiveMaxConnections, readOpenFileLimit } from './open-files.ts';
import { ThrottledLog } from './throttled-log.ts';

const LIMITS = `Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max open files            256                  524288               files
Max locked memory         8388608              8388608              bytes
`;

describe('open-file limit', () => {
  it('reads the soft limit from /proc/self/limits text; unknown when missing or unlimited', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'limits-'));
    writeFileSync(path.join(dir, 'a'), LIMITS);
    writeFileSync(path.join(dir, 'b'), LIMITS.replace('256   ', 'unlimited'));
    expect(readOpenFileLimit(path.join(dir, 'a'))).toBe(256);
    expect(readOpenFileLimit(path.join(dir, 'b'))).toBeUndefined();
    expect(readOpenFileLimit(path.join(dir, 'missing'))).toBeUndefined();
    if (process.platform === 'linux') expect(readOpenFileLimit()).toBeGreaterThan(0);
  });

  it('keeps the connection cap well below the limit, never above what was configured', () => {
    expect(effectiveMaxConnections(10_000, undefined)).toBe(10_000);
    expect(effectiveMaxConnections(10_000, 256)).toBe(128);
    expect(effectiveMaxConnections(10_000, 1024)).toBe(768);
    expect(effectiveMaxConnections(10_000, 65_536)).toBe(10_000);
    expect(effectiveMaxConnections(100, 1024)).toBe(100);
    expect(effectiveMaxConnections(10_000, 40)).toBe(20);
  });
});

describe('ThrottledLog', () => {
  it('writes the first event, then at most one per interval with the count it skipped', () => {
    let t = 0;
    const out: Array<[unknown, number]> = [];
    const log = new ThrottledLog(1000, (f, n) => out.push([f, n]), () => t);
    for (let i = 0; i < 5; i++) log.event({ i });
    t = 1000;
    log.event({ i: 5 });
    expect(out).toEqual([[{ i: 0 }, 0], [{ i: 5 }, 4]]);
  });
});
