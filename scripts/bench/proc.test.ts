import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { clockTicksPerSecond, cpuSnapshot, cpuTicksBetween, descendants, parseStat, parseStatusKb, peakRss, processName, readProcTable } from './proc.ts';

// A real line from Linux 6.1 (node), fields 1–25 of proc(5).
const NODE_STAT = '5521 (node) S 5495 5495 5441 0 -1 4194560 84213 0 12 0 1532 207 0 0 20 0 33 0 8412 1251233792 80339 18446744073709551615';
const stat = (pid: number, comm: string, ppid: number, utime: number, stime: number, start = 1000) =>
  `${pid} (${comm}) S ${ppid} ${pid} ${pid} 0 -1 4194560 10 0 0 0 ${utime} ${stime} 0 0 20 0 1 0 ${start} 1000 100 18446744073709551615`;

describe('parseStat', () => {
  it('reads pid, ppid, utime, stime and starttime from a stat line', () => {
    expect(parseStat(NODE_STAT)).toEqual({ pid: 5521, comm: 'node', ppid: 5495, utime: 1532, stime: 207, starttime: 8412 });
  });

  it('counts fields from the last parenthesis, so a command name with spaces and parentheses is not misread', () => {
    const s = parseStat(stat(42, 'a) b (c', 7, 11, 22));
    expect(s).toMatchObject({ pid: 42, comm: 'a) b (c', ppid: 7, utime: 11, stime: 22 });
  });

  it('refuses a line that is not a stat line', () => {
    expect(() => parseStat('garbage')).toThrow(/not a \/proc/);
    expect(() => parseStat('1 (x) S 0')).toThrow(/field 14 missing/);
  });
});

describe('parseStatusKb', () => {
  it('returns the kB field in bytes, and undefined when the key is absent', () => {
    const text = 'Name:\tnode\nVmPeak:\t 1222000 kB\nVmHWM:\t  321356 kB\nVmRSS:\t  300000 kB\n';
    expect(parseStatusKb(text, 'VmHWM')).toBe(321356 * 1024);
    expect(parseStatusKb(text, 'VmRSS')).toBe(300000 * 1024);
    expect(parseStatusKb('Name:\tkthreadd\n', 'VmHWM')).toBeUndefined();
  });
});

describe('processName', () => {
  it('names a service by its directory, a script by its file, anything else by its executable', () => {
    expect(processName(['/usr/bin/node', '--import', 'tsx', '/repo/services/sink-writer/src/main.ts'])).toBe('sink-writer');
    expect(processName(['/usr/bin/node', '--import', 'tsx', 'scripts/start-embedded.ts'])).toBe('start-embedded');
    expect(processName(['/usr/bin/node', '/repo/scripts/bench/ceiling-server.mjs'])).toBe('ceiling-server');
    expect(processName(['/repo/node_modules/@esbuild/linux-x64/bin/esbuild', '--service=0.28.2', '--ping'])).toBe('esbuild');
  });
});

describe('a process tree in a /proc-shaped directory', () => {
  let root: string;
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  async function proc(procs: Array<{ pid: number; ppid: number; u: number; s: number; start?: number; argv?: string[]; hwmKb?: number }>) {
    root = await mkdtemp(path.join(tmpdir(), 'bench-proc-'));
    await mkdir(path.join(root, 'self'));
    for (const p of procs) {
      const dir = path.join(root, String(p.pid));
      await mkdir(dir);
      await writeFile(path.join(dir, 'stat'), stat(p.pid, 'node', p.ppid, p.u, p.s, p.start));
      await writeFile(path.join(dir, 'cmdline'), `${(p.argv ?? ['node']).join('\0')}\0`);
      await writeFile(path.join(dir, 'status'), p.hwmKb === undefined ? 'Name:\tx\n' : `Name:\tnode\nVmHWM:\t${p.hwmKb} kB\n`);
    }
    return root;
  }

  it('finds the root and all its descendants, and nothing else', async () => {
    await proc([
      { pid: 1, ppid: 0, u: 0, s: 0 },
      { pid: 10, ppid: 1, u: 5, s: 1 }, // the bench's child
      { pid: 11, ppid: 10, u: 7, s: 2 },
      { pid: 12, ppid: 11, u: 3, s: 3 }, // grandchild
      { pid: 20, ppid: 1, u: 100, s: 100 }, // someone else's
    ]);
    const table = readProcTable(root);
    expect(table.size).toBe(5); // `self` is not a pid
    expect(descendants(table, 10).sort()).toEqual([10, 11, 12]);
    expect(descendants(table, 99)).toEqual([]);
  });

  it('sums the tree\'s tick deltas; a process born in the window is charged all its ticks, a reused pid too', async () => {
    await proc([
      { pid: 10, ppid: 1, u: 100, s: 10 },
      { pid: 11, ppid: 10, u: 50, s: 5 },
      { pid: 13, ppid: 10, u: 1, s: 1, start: 500 },
    ]);
    const before = cpuSnapshot(10, root);
    await rm(root, { recursive: true, force: true });
    await proc([
      { pid: 10, ppid: 1, u: 130, s: 20 }, // +40
      { pid: 11, ppid: 10, u: 60, s: 5 }, // +10
      { pid: 12, ppid: 11, u: 4, s: 2 }, // new: +6
      { pid: 13, ppid: 10, u: 2, s: 1, start: 900 }, // pid reused: +3
      { pid: 30, ppid: 1, u: 999, s: 999 }, // not in the tree
    ]);
    expect(cpuTicksBetween(before, cpuSnapshot(10, root))).toBe(40 + 10 + 6 + 3);
  });

  it('reports VmHWM per process of the tree with its name, skipping processes without memory', async () => {
    await proc([
      { pid: 10, ppid: 1, u: 0, s: 0, argv: ['/usr/bin/node', '--import', 'tsx', 'scripts/start-embedded.ts'], hwmKb: 70_000 },
      { pid: 11, ppid: 10, u: 0, s: 0, argv: ['/usr/bin/node', '--import', 'tsx', '/r/services/edge/src/main.ts'], hwmKb: 120_000 },
      { pid: 12, ppid: 10, u: 0, s: 0, argv: ['[kworker]'] },
    ]);
    expect(peakRss(10, root)).toEqual([
      { pid: 10, name: 'start-embedded', peakRssBytes: 70_000 * 1024 },
      { pid: 11, name: 'edge', peakRssBytes: 120_000 * 1024 },
    ]);
  });
});

describe('on this machine\'s /proc', () => {
  it('sees a child this process started as part of its tree, with its name and peak RSS', async () => {
    const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', 'bench-proc-child.mjs'], { stdio: 'ignore' });
    try {
      await once(child, 'spawn');
      expect(descendants(readProcTable(), process.pid)).toContain(child.pid);
      expect(cpuSnapshot(process.pid).get(process.pid)?.ticks).toBeGreaterThan(0);
      // node -e: argv is [node, -e, code, …]; the file-looking argument names it.
      const mine = peakRss(process.pid).find((p) => p.pid === child.pid);
      expect(mine?.name).toBe('bench-proc-child');
      expect(mine?.peakRssBytes).toBeGreaterThan(1024 * 1024);
    } finally {
      child.kill('SIGKILL');
    }
    expect(clockTicksPerSecond()).toBeGreaterThan(0);
  });
});
