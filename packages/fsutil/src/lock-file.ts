/**
 * A lock file naming the pid that holds it: one owner per file across processes and within one.
 * A lock left by a process that no longer runs is taken over, so a crash never needs a human to
 * delete a file before the next start. Liveness is a pid check, so it guards processes that share
 * a pid namespace (one machine or container), not writers on two hosts sharing a volume.
 */
import { link, readFile, unlink, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isErrno } from './errno.ts';

export interface LockFileOptions {
  /** How long to wait for a live holder to let go before refusing; default 0 (refuse at once). */
  waitMs?: number;
  /** How often to look again while waiting; default 20 ms. */
  pollMs?: number;
}

export interface HeldLock {
  /** The file named a process that no longer runs (a crashed owner), and was taken over. */
  readonly tookOver: boolean;
  /** Removes the lock file if it still names this process. Idempotent. */
  release(): Promise<void>;
}

/** The lock is held by a live process, or by this one. */
export class LockHeldError extends Error {
  constructor(
    readonly file: string,
    /** The holder's pid; process.pid when it is held elsewhere in this process. */
    readonly holder: number,
  ) {
    super(`${file} is held by ${holder === process.pid ? 'this process' : `running process ${holder}`}`);
    this.name = 'LockHeldError';
  }
}

/** Lock files this process holds (resolved paths). Another holder in the same process is refused. */
const heldInProcess = new Set<string>();
let tmpCounter = 0;

/**
 * Takes `file`, or throws LockHeldError when a live process (this one included) holds it and
 * `waitMs` passes without it letting go. A file naming a dead pid, or this pid while this process
 * does not hold it (a container restarted with the same pid), or no pid at all, is stale.
 */
export async function acquireLockFile(file: string, opts: LockFileOptions = {}): Promise<HeldLock> {
  const path = resolve(file);
  const deadline = Date.now() + (opts.waitMs ?? 0);
  for (;;) {
    let holder = process.pid;
    // Claimed before the first await, so two acquires in this process never both get to the file.
    if (!heldInProcess.has(path)) {
      heldInProcess.add(path);
      let got: boolean | { holder: number };
      try {
        got = await take(path);
      } catch (err) {
        heldInProcess.delete(path);
        throw err;
      }
      if (typeof got === 'boolean') return held(path, got);
      heldInProcess.delete(path);
      holder = got.holder;
    }
    if (Date.now() >= deadline) throw new LockHeldError(path, holder);
    await sleep(opts.pollMs ?? 20);
  }
}

function held(path: string, tookOver: boolean): HeldLock {
  let released = false;
  return {
    tookOver,
    async release() {
      if (released) return;
      released = true;
      try {
        if ((await readHolder(path)) === process.pid) await unlink(path).catch(() => undefined);
      } finally {
        heldInProcess.delete(path);
      }
    },
  };
}

/** true/false: taken (false: fresh, true: over a stale lock); otherwise the live holder. */
async function take(path: string): Promise<boolean | { holder: number }> {
  // The pid is written under a temporary name and linked into place: link fails with EEXIST when
  // the lock exists, and a competitor never reads a lock file whose pid is not written yet.
  tmpCounter = (tmpCounter + 1) % 1_000_000;
  const tmp = `${path}.${process.pid}.${tmpCounter}.tmp`;
  const mine = `${process.pid}\n`;
  await writeFile(tmp, mine);
  try {
    let tookOver = false;
    // Bounded: a round ends with the lock taken, a live holder, or a competitor having moved first.
    for (let round = 0; round < 200; round++) {
      try {
        await link(tmp, path);
        return tookOver;
      } catch (err) {
        if (isErrno(err, 'ENOENT')) {
          // The holder swept its directory's *.tmp files (ours among them) while we were here.
          await writeFile(tmp, mine);
          continue;
        }
        if (!isErrno(err, 'EEXIST')) throw err;
      }
      const seen = await readText(path);
      if (seen === undefined) continue; // released meanwhile
      const holder = parsePid(seen);
      if (holder !== undefined && holder !== process.pid && pidAlive(holder)) return { holder };
      const broke = await breakStale(path, seen, tmp);
      if (broke === 'busy') await sleep(2);
      tookOver ||= broke === 'removed';
    }
    throw new Error(`${path}: lock file keeps changing under us; another process is contending for it`);
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}

/**
 * Removes a stale lock, under `<path>.break` so that of several processes that found it stale at
 * once only one removes it, and only while it still holds what was found stale: a competitor that
 * broke it first and took the lock keeps it. A `.break` file of a dead process (one that crashed in
 * these few lines) is removed.
 */
async function breakStale(path: string, seen: string, tmp: string): Promise<'removed' | 'changed' | 'busy'> {
  const guard = `${path}.break`;
  try {
    await link(tmp, guard);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return 'busy'; // our temp file was swept; the next round rewrites it
    if (!isErrno(err, 'EEXIST')) throw err;
    const breaker = parsePid((await readText(guard)) ?? '');
    if (breaker !== undefined && breaker !== process.pid && pidAlive(breaker)) return 'busy';
    await unlink(guard).catch(() => undefined);
    return 'busy';
  }
  try {
    if ((await readText(path)) !== seen) return 'changed';
    await unlink(path);
    return 'removed';
  } finally {
    await unlink(guard).catch(() => undefined);
  }
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
}

async function readHolder(path: string): Promise<number | undefined> {
  return parsePid(await readFile(path, 'utf8').catch(() => ''));
}

function parsePid(text: string): number | undefined {
  const pid = Number.parseInt(text.trim(), 10);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the pid exists but belongs to another user, so it is alive.
    return isErrno(err, 'EPERM');
  }
}
