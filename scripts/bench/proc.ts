/**
 * CPU time and peak memory of a process tree, read from Linux /proc. A system under test is the
 * process the bench started plus all its descendants (supervisor, services, tsx's esbuild), so
 * every process it runs is charged, however the topology splits the work.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

export interface ProcStat {
  pid: number;
  comm: string;
  ppid: number;
  /** Clock ticks in user and kernel mode, summed over all the process's threads. */
  utime: number;
  stime: number;
  /** Clock ticks after boot when the process started; tells a reused pid from the original. */
  starttime: number;
}

/**
 * Parses /proc/<pid>/stat. The command name is in parentheses and may itself hold spaces and
 * parentheses, so the fields are counted from the last ')'.
 */
export function parseStat(text: string): ProcStat {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) throw new Error(`not a /proc/<pid>/stat line: ${text.slice(0, 80)}`);
  const rest = text.slice(close + 2).trim().split(/\s+/);
  // rest[0] is field 3 (state) of proc(5); field n is rest[n - 3].
  const field = (n: number) => {
    const v = Number(rest[n - 3]);
    if (!Number.isFinite(v)) throw new Error(`/proc stat field ${n} missing in: ${text.slice(0, 80)}`);
    return v;
  };
  return { pid: Number(text.slice(0, open).trim()), comm: text.slice(open + 1, close), ppid: field(4), utime: field(14), stime: field(15), starttime: field(22) };
}

/** A kB field of /proc/<pid>/status (VmHWM, VmRSS, …) in bytes; undefined when absent (kernel threads, zombies). */
export function parseStatusKb(text: string, key: string): number | undefined {
  const m = new RegExp(`^${key}:\\s+(\\d+)\\s+kB`, 'm').exec(text);
  return m ? Number(m[1]) * 1024 : undefined;
}

/**
 * A short name for a process from its argv: a service's directory (`services/edge/src/main.ts` →
 * `edge`), else the script's file name without extension, else the executable's name.
 */
export function processName(argv: readonly string[]): string {
  const script = argv.slice(1).find((a) => /\.(ts|mts|js|mjs|cjs)$/.test(a));
  if (script) {
    const m = /(?:^|\/)services\/([^/]+)\//.exec(script);
    return m ? (m[1] as string) : path.basename(script).replace(/\.[^.]+$/, '');
  }
  return path.basename(argv[0] ?? '?');
}

/** Every process's stat line; processes that exit while being read are skipped. */
export function readProcTable(root = '/proc'): Map<number, ProcStat> {
  const table = new Map<number, ProcStat>();
  for (const name of readdirSync(root)) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const s = parseStat(readFileSync(path.join(root, name, 'stat'), 'utf8'));
      table.set(s.pid, s);
    } catch {
      // gone between readdir and read
    }
  }
  return table;
}

/** `rootPid` and all processes below it, parents before children. */
export function descendants(table: ReadonlyMap<number, ProcStat>, rootPid: number): number[] {
  const children = new Map<number, number[]>();
  for (const s of table.values()) {
    const list = children.get(s.ppid);
    if (list) list.push(s.pid);
    else children.set(s.ppid, [s.pid]);
  }
  const out: number[] = [];
  if (!table.has(rootPid)) return out;
  const queue = [rootPid];
  // A pid loop is impossible in /proc, but a table read in pieces could contain one; `seen` makes sure.
  const seen = new Set<number>();
  while (queue.length > 0) {
    const pid = queue.shift() as number;
    if (seen.has(pid)) continue;
    seen.add(pid);
    out.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return out;
}

/** CPU ticks per process of a tree, at one instant. */
export type CpuSnapshot = Map<number, { ticks: number; starttime: number }>;

export function cpuSnapshot(rootPid: number, root = '/proc'): CpuSnapshot {
  const table = readProcTable(root);
  const snap: CpuSnapshot = new Map();
  for (const pid of descendants(table, rootPid)) {
    const s = table.get(pid) as ProcStat;
    snap.set(pid, { ticks: s.utime + s.stime, starttime: s.starttime });
  }
  return snap;
}

/**
 * Ticks the tree used between two snapshots. A process that appeared in between is charged all its
 * ticks; one that exited in between is charged nothing after `before` (its ticks are gone with it),
 * which the bench avoids by not stopping anything inside a window.
 */
export function cpuTicksBetween(before: CpuSnapshot, after: CpuSnapshot): number {
  let ticks = 0;
  for (const [pid, a] of after) {
    const b = before.get(pid);
    ticks += b && b.starttime === a.starttime ? a.ticks - b.ticks : a.ticks;
  }
  return ticks;
}

let clkTck: number | undefined;
/** USER_HZ, the unit of /proc's CPU times (`getconf CLK_TCK`, 100 on almost every Linux). */
export function clockTicksPerSecond(): number {
  clkTck ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
  if (!Number.isInteger(clkTck) || clkTck <= 0) throw new Error(`getconf CLK_TCK gave ${clkTck}`);
  return clkTck;
}

export interface ProcessMemory {
  pid: number;
  name: string;
  /** VmHWM: the most resident memory the process ever had. */
  peakRssBytes: number;
}

/** Peak RSS of each process of the tree, named by its command line. */
export function peakRss(rootPid: number, root = '/proc'): ProcessMemory[] {
  const out: ProcessMemory[] = [];
  for (const pid of descendants(readProcTable(root), rootPid)) {
    try {
      const hwm = parseStatusKb(readFileSync(path.join(root, String(pid), 'status'), 'utf8'), 'VmHWM');
      const argv = readFileSync(path.join(root, String(pid), 'cmdline'), 'utf8').split('\0').filter((a) => a !== '');
      if (hwm !== undefined) out.push({ pid, name: processName(argv), peakRssBytes: hwm });
    } catch {
      // exited meanwhile
    }
  }
  return out;
}
