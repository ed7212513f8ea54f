/** Replacing a file so that a crash leaves the old content or the new, never a mix. */
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * Errors of a directory fsync that only say "this filesystem or OS cannot fsync a directory"
 * (EISDIR/EPERM when Windows opens or syncs one, EINVAL/EBADF on some network filesystems), which
 * PostgreSQL ignores as well: there is nothing more to do there. EIO and the rest are real.
 */
const DIR_SYNC_UNSUPPORTED = new Set(['EINVAL', 'EBADF', 'EISDIR', 'EPERM', 'ENOTSUP']);

/**
 * Makes a directory entry change (create, rename, unlink) durable. Without it a freshly created
 * file or a renamed one can vanish after a power loss even though its data was fsync'd.
 */
export async function fsyncDir(dir: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch (err) {
    if (!DIR_SYNC_UNSUPPORTED.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
  } finally {
    await fh?.close();
  }
}

export interface AtomicWriteOptions {
  /**
   * true (default): fsync the file before the rename and the directory after it, so the new content
   * survives a power loss once this resolves. false: still atomic against a process crash, but the
   * OS decides when it reaches the disk.
   */
  durable?: boolean;
  /** Permissions of the new file (before the umask); default 0o666 like writeFile. */
  mode?: number;
}

let tmpCounter = 0;

/**
 * Replaces `path` with `data`: writes a temp file in the same directory, fsyncs it, renames it over
 * `path`, fsyncs the directory. Readers see the old file or the new one, never a half-written one,
 * and on any error the temp file is removed and `path` is untouched. `data` may be a function that
 * writes the content itself, for content too large to hold in memory at once. Temp files are named
 * `<path>.<pid>.<n>.tmp`, so a crash mid-write leaves only `*.tmp` files for the owner to sweep.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array | ((fh: FileHandle) => Promise<void>), opts: AtomicWriteOptions = {}): Promise<void> {
  const durable = opts.durable ?? true;
  tmpCounter = (tmpCounter + 1) % 1_000_000;
  const tmp = `${path}.${process.pid}.${tmpCounter}.tmp`;
  const fh = await open(tmp, 'w', opts.mode);
  try {
    if (typeof data === 'function') await data(fh);
    else await fh.writeFile(data);
    if (durable) await fh.sync();
  } catch (err) {
    await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  try {
    await fh.close();
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  if (durable) await fsyncDir(dirname(path));
}
