/** Small filesystem helpers whose ordering matters for crash safety. */
import { open, rename, readFile, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { LogUnavailableError } from '../types.ts';

/**
 * Makes a directory entry change (create, rename, unlink) durable. Without it a freshly created
 * segment or a renamed offsets file can vanish after a power loss even though its data was fsync'd.
 */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

let tmpCounter = 0;

/**
 * Replaces `path` with `data` so that a crash leaves either the old or the new content, never a mix:
 * write a temp file in the same directory, fsync it, rename over, fsync the directory. `data` may be
 * a function that writes the content itself, for content too large to hold in memory at once.
 */
export async function writeFileAtomic(path: string, data: string | Buffer | ((fh: FileHandle) => Promise<void>), durable: boolean): Promise<void> {
  tmpCounter = (tmpCounter + 1) % 1_000_000;
  const tmp = `${path}.${process.pid}.${tmpCounter}.tmp`;
  const fh = await open(tmp, 'w');
  try {
    if (typeof data === 'function') await data(fh);
    else await fh.writeFile(data);
    if (durable) await fh.sync();
  } catch (err) {
    await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await fh.close();
  try {
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  if (durable) await fsyncDir(join(path, '..'));
}

export function isErrno(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === code;
}

/** Directories this process holds the writer lock for; a second writer in-process is a bug. */
const lockedInProcess = new Set<string>();

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the pid exists but belongs to someone else, so it is alive.
    return isErrno(err, 'EPERM');
  }
}

/**
 * Takes `<dir>/LOCK` so two processes never append to (or truncate) the same log. Lock files of dead
 * processes are taken over: after a crash the next start must not need a human to delete a file.
 * A lock naming our own pid is stale too (a container restarted with the same pid).
 */
export async function acquireDirLock(dir: string): Promise<() => Promise<void>> {
  const path = join(dir, 'LOCK');
  if (lockedInProcess.has(path)) {
    throw new LogUnavailableError(`embedded log ${dir} is already open for writing in this process`);
  }
  lockedInProcess.add(path);
  try {
    try {
      await writeFile(path, `${process.pid}\n`, { flag: 'wx' });
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err;
      const holder = Number.parseInt((await readFile(path, 'utf8').catch(() => '')).trim(), 10);
      if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && pidAlive(holder)) {
        throw new LogUnavailableError(
          `embedded log ${dir} is locked by running process ${holder}; open it with readOnly: true to inspect it`,
        );
      }
      await writeFileAtomic(path, `${process.pid}\n`, false);
    }
  } catch (err) {
    lockedInProcess.delete(path);
    throw err;
  }
  let released = false;
  return async () => {
    if (released) return;
    released = true;
    lockedInProcess.delete(path);
    await unlink(path).catch(() => undefined);
  };
}
