import { stat } from 'node:fs/promises';

/** A version of a file that changes whenever its content can have changed (mtime, size, inode). */
export async function fileVersion(file: string): Promise<string> {
  try {
    const s = await stat(file);
    return `${s.mtimeMs}:${s.size}:${s.ino}`;
  } catch {
    return 'absent';
  }
}

/**
 * A file the services re-read when it changes (tenants.json, cutover.json), checked every
 * `reloadMs` so a change takes effect within that, without a restart. A file that fails to read
 * keeps the last good value and reports the error; it never takes a service down.
 */
export class PolledFile<T> {
  private value: T | undefined;
  private version = '';
  private loaded = false;
  private reloading = false;
  private timer: NodeJS.Timeout | undefined;
  lastError: string | undefined;

  constructor(
    private readonly file: string,
    private readonly reloadMs: number,
    private readonly read: (file: string) => Promise<T>,
    private readonly onLoad?: (value: T) => void,
  ) {}

  async start(): Promise<void> {
    await this.reload();
    this.timer = setInterval(() => {
      void this.reload();
    }, this.reloadMs);
    this.timer.unref();
  }

  async reload(): Promise<void> {
    if (this.reloading) return;
    this.reloading = true;
    try {
      const v = await fileVersion(this.file);
      if (v === this.version) return;
      const value = await this.read(this.file);
      this.value = value;
      this.version = v;
      this.loaded = true;
      this.lastError = undefined;
      this.onLoad?.(value);
    } catch (e) {
      this.lastError = (e as Error).message;
    } finally {
      this.reloading = false;
    }
  }

  get current(): T | undefined {
    return this.value;
  }

  /** False until the file was read successfully once. */
  get loadedOnce(): boolean {
    return this.loaded;
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
