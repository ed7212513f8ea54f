import type { RecordBuffer } from './buffer.ts';
import type { Settings } from './options.ts';
import { sleep } from './sleep.ts';
import type { Ledger } from './stats.ts';
import { WalWriteError, type Wal } from './wal/wal.ts';
import { backoffMs } from '@ingest/queue';

/**
 * Moves the record buffer into the WAL: at least every flushIntervalMs, sooner when a batch' worth
 * waits or someone waits on it, one write (and one fsync under perBatch) per chunk. Keeps the WAL
 * within maxDiskBytes by the full policy, and under fsync 'interval' runs the sync timer.
 */
export class Flusher {
  private wal: Wal | undefined;
  private running = false;
  private again = false;
  private soon = false;
  /** close() sets this so a flusher waiting for disk space under 'block' gives up in time. */
  private deadline = Infinity;
  private closed = false;
  private spaceWaiter: (() => void) | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  private syncTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly s: Settings,
    private readonly buffer: RecordBuffer,
    private readonly ledger: Ledger,
    /** Records reached the WAL: the sender has something to read. */
    private readonly onWritten: () => void,
  ) {}

  /** Starts flushing into an opened WAL. */
  start(wal: Wal): void {
    this.wal = wal;
    this.flushTimer = setInterval(() => this.kick(), this.s.flushIntervalMs);
    this.flushTimer.unref();
    if (this.s.fsync === 'interval') {
      this.syncTimer = setInterval(() => {
        wal.sync().catch((e: unknown) => this.ledger.note('CLIENT_ERR_WAL_IO', (e as Error).message));
      }, this.s.fsyncIntervalMs);
      this.syncTimer.unref();
    }
    if (this.buffer.length > 0) this.kick();
  }

  /** Delivery freed disk space: a flusher waiting for it under 'block' looks again. */
  spaceFreed(): void {
    this.spaceWaiter?.();
  }

  scheduleSoon(): void {
    if (this.soon || !this.wal) return;
    this.soon = true;
    setImmediate(() => {
      this.soon = false;
      this.kick();
    });
  }

  kick(): void {
    if (!this.wal || this.closed) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    this.run()
      .catch((e: unknown) => this.ledger.note('CLIENT_ERR_WAL_IO', (e as Error).message))
      .finally(() => {
        this.running = false;
        if (this.again && !this.closed) {
          this.again = false;
          this.kick();
        }
      });
  }

  /** close(), first step: stop the timers; a wait for disk space gives up after `timeoutMs`. */
  stopTimers(timeoutMs: number): void {
    this.deadline = Date.now() + timeoutMs;
    if (this.flushTimer) clearInterval(this.flushTimer);
    if (this.syncTimer) clearInterval(this.syncTimer);
    this.flushTimer = this.syncTimer = undefined;
  }

  /** close(), second step: one last run to put the buffer on disk, within the deadline. */
  async finalFlush(): Promise<void> {
    if (!this.wal) return;
    while (this.running) await sleep(5, true);
    this.running = true;
    try {
      await this.run(this.deadline);
    } catch (e) {
      this.ledger.note('CLIENT_ERR_WAL_IO', (e as Error).message);
    } finally {
      this.running = false;
    }
  }

  /** close(), last step: nothing runs again. */
  close(): void {
    this.closed = true;
  }

  private async run(deadline = Infinity): Promise<void> {
    const wal = this.wal;
    if (!wal) return;
    let failures = 0;
    while (this.buffer.length > 0 && !this.closed) {
      const chunk = this.buffer.takeChunk();
      if (!(await this.ensureSpace(wal, this.buffer.chunkBytes, deadline))) {
        this.buffer.putBack(chunk);
        return;
      }
      try {
        await wal.append(chunk);
        this.written(chunk.length);
        failures = 0;
      } catch (e) {
        const n = e instanceof WalWriteError ? e.written : 0;
        this.written(n);
        this.buffer.putBack(chunk.slice(n));
        this.ledger.note('CLIENT_ERR_WAL_IO', (e as Error).message);
        // The entries stay buffered (bounded) and the write is retried: a full or flaky disk
        // should not lose what record() already accepted.
        await sleep(backoffMs(++failures, { initialMs: 50, maxMs: 2000, jitter: 'none' }));
        if (Date.now() >= Math.min(deadline, this.deadline)) return;
      }
    }
  }

  private written(n: number): void {
    this.ledger.walPending += n;
    this.buffer.written(n);
    if (n > 0) this.onWritten();
  }

  /** Makes room for `need` bytes within maxDiskBytes per the full policy; false if it gave up. */
  private async ensureSpace(wal: Wal, need: number, deadline: number): Promise<boolean> {
    for (;;) {
      if (wal.usedBytes + need <= this.s.maxDiskBytes) {
        if (wal.diskBytes + need > this.s.maxDiskBytes) await wal.reclaim();
        return true;
      }
      await wal.reclaim();
      if (wal.usedBytes + need <= this.s.maxDiskBytes) return true;
      if (this.s.fullPolicy === 'dropOldest') {
        const r = await wal.dropOldest();
        if (r) {
          this.ledger.dropped += r.unread;
          this.ledger.walPending -= r.unread;
          if (r.unread > 0) this.ledger.note('CLIENT_ERR_WAL_FULL', `disk budget reached: dropped the oldest ${r.unread} undelivered entries`);
          continue;
        }
        // Nothing left to drop but in-flight data: write anyway rather than lose new entries.
        return true;
      }
      // block (and rejectNew, whose budget check in record() can be outrun by recovered data):
      // wait for the sender to free space.
      const until = Math.min(deadline, this.deadline);
      if (Date.now() >= until || this.closed) return false;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(1000, Math.max(1, until - Date.now())));
        t.unref();
        this.spaceWaiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.spaceWaiter = undefined;
    }
  }
}
