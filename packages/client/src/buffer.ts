import { Deque } from './deque.ts';
import { IngestClientError } from './errors.ts';
import type { Settings } from './options.ts';
import type { Ledger } from './stats.ts';
import type { WalItem } from './wal/wal.ts';

/** A serialized entry waiting for the WAL; `size` is what it will take there. */
export interface Buffered extends WalItem {
  size: number;
}

/** recordAsync() callers waiting for room; beyond this they get CLIENT_ERR_BUFFER_FULL at once. */
const MAX_ROOM_WAITERS = 1024;
/** Upper bounds of one WAL write (one fsync under perBatch). */
const WRITE_CHUNK_ENTRIES = 16_384;
const WRITE_CHUNK_BYTES = 4 * 1024 * 1024;

/**
 * Most bytes one WAL write takes (at most a quarter of the disk budget). Exported so tests can
 * tell from the disk usage when the flusher's next write can no longer fit.
 */
export function writeChunkCapBytes(maxDiskBytes: number): number {
  return Math.min(WRITE_CHUNK_BYTES, Math.floor(maxDiskBytes / 4));
}

interface RoomWaiter {
  item: Buffered;
  resolve: () => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout | undefined;
}

export interface BufferHooks {
  /** Bytes the WAL holds undelivered (rejectNew charges the buffer against the same budget). */
  diskUsedBytes(): number;
  /** Someone is waiting on the flusher: run it now. */
  flushNow(): void;
  /** A batch' worth is buffered (or fsync is 'always'): run the flusher on the next turn. */
  flushSoon(): void;
}

/**
 * The bounded in-memory buffer between record() and the WAL, with the full policy for memory and
 * the callers waiting on it: recordAsync() for room, flush() for what it recorded to be written.
 */
export class RecordBuffer {
  private readonly items = new Deque<Buffered>();
  private bytes = 0;
  /** The chunk being written: out of the buffer, not yet in the WAL. */
  private writingBytes = 0;
  private writingCount = 0;
  /** Entries ever accepted into the buffer, and entries that have left it (written or dropped). */
  private acceptedSeq = 0;
  private settledSeq = 0;
  private readonly settleWaiters: Array<{ target: number; resolve: () => void }> = [];
  private readonly roomWaiters: RoomWaiter[] = [];

  constructor(
    private readonly s: Settings,
    private readonly ledger: Ledger,
    private readonly hooks: BufferHooks,
  ) {}

  /** Entries in the buffer, not yet written. */
  get length(): number {
    return this.items.length;
  }

  /** Entries not yet in the WAL: buffered plus the chunk being written. */
  get unwritten(): number {
    return this.items.length + this.writingCount;
  }

  /** Bytes of the chunk being written (the flusher reserves disk space for them). */
  get chunkBytes(): number {
    return this.writingBytes;
  }

  oldestAppendedAt(): number | undefined {
    return this.items.peek()?.appendedAt;
  }

  /** Puts an item in the buffer or applies the full policy. false only when `mayThrow` is false. */
  admit(item: Buffered, mayThrow: boolean): boolean {
    const policy = this.s.fullPolicy;
    if (policy === 'rejectNew') {
      const used = this.hooks.diskUsedBytes() + this.bytes + this.writingBytes + item.size;
      if (used > this.s.maxDiskBytes) throw new IngestClientError('CLIENT_ERR_WAL_FULL', [this.s.maxDiskBytes]);
    }
    if (this.isFull(item.size) || this.roomWaiters.length > 0) {
      if (policy === 'dropOldest') {
        while (this.isFull(item.size) && this.items.length > 0) {
          const old = this.items.shift()!;
          this.bytes -= old.size;
          this.ledger.dropped++;
          this.settle(1);
        }
      } else if (mayThrow) {
        this.hooks.flushNow();
        throw new IngestClientError('CLIENT_ERR_BUFFER_FULL', [`${this.items.length} entries, ${this.bytes} bytes`]);
      } else {
        return false;
      }
    }
    this.push(item);
    return true;
  }

  /** Waits until `item` fits and is buffered (or the timeout passes, or the client closes). */
  waitForRoom(item: Buffered, timeoutMs: number | undefined): Promise<void> {
    if (this.roomWaiters.length >= MAX_ROOM_WAITERS) return Promise.reject(new IngestClientError('CLIENT_ERR_BUFFER_FULL', [`${MAX_ROOM_WAITERS} callers already waiting`]));
    return new Promise<void>((resolve, reject) => {
      const w: RoomWaiter = { item, resolve, reject, timer: undefined };
      if (timeoutMs !== undefined) {
        w.timer = setTimeout(() => {
          const i = this.roomWaiters.indexOf(w);
          if (i >= 0) this.roomWaiters.splice(i, 1);
          reject(new IngestClientError('CLIENT_ERR_TIMEOUT', [timeoutMs]));
        }, timeoutMs);
        w.timer.unref();
      }
      this.roomWaiters.push(w);
      this.hooks.flushNow();
    });
  }

  /** Resolves once everything accepted before the call has left the buffer (written or dropped). */
  async untilSettled(): Promise<void> {
    const target = this.acceptedSeq;
    if (this.settledSeq >= target) return;
    await new Promise<void>((resolve) => {
      this.settleWaiters.push({ target, resolve });
      this.hooks.flushNow();
    });
  }

  /**
   * Takes the next write from the head of the buffer: everything buffered, up to a byte cap. One
   * write and one fsync per chunk is the group commit that lets perBatch keep up with a hot loop.
   * The chunk leaves the buffer while it is written, so dropOldest evicting from the buffer
   * meanwhile can never remove an entry that is being written.
   */
  takeChunk(): Buffered[] {
    const cap = writeChunkCapBytes(this.s.maxDiskBytes);
    const candidates = this.items.slice(WRITE_CHUNK_ENTRIES);
    let bytes = 0;
    let n = 0;
    for (const c of candidates) {
      if (n > 0 && bytes + c.size > cap) break;
      bytes += c.size;
      n++;
    }
    const chunk = candidates.slice(0, n);
    this.items.drop(n);
    this.bytes -= bytes;
    this.writingBytes = bytes;
    this.writingCount = n;
    return chunk;
  }

  /** Returns the unwritten part of a chunk to the front of the buffer, in order. */
  putBack(items: Buffered[]): void {
    let bytes = 0;
    for (const it of items) bytes += it.size;
    this.items.prepend(items);
    this.bytes += bytes;
    this.writingBytes = 0;
    this.writingCount = 0;
  }

  /** The first `n` entries of the chunk are in the WAL. */
  written(n: number): void {
    this.writingBytes = 0;
    this.writingCount = 0;
    if (n > 0) this.settle(n);
  }

  /** close(): drops what could not be written (counted), and wakes every waiter. Returns how many. */
  dropAll(): number {
    const n = this.items.length;
    if (n > 0) {
      this.ledger.dropped += n;
      this.items.drop(n);
      this.bytes = 0;
      this.settle(n);
    }
    for (const w of this.settleWaiters.splice(0)) w.resolve();
    return n;
  }

  rejectRoomWaiters(err: Error): void {
    for (const w of this.roomWaiters.splice(0)) {
      if (w.timer) clearTimeout(w.timer);
      w.reject(err);
    }
  }

  private isFull(size: number): boolean {
    return this.items.length >= this.s.maxBufferEntries || this.bytes + size > this.s.maxBufferBytes;
  }

  private push(item: Buffered): void {
    this.items.push(item);
    this.bytes += item.size;
    this.ledger.appended++;
    this.acceptedSeq++;
    if (this.s.fsync === 'always' || this.items.length >= this.s.maxBatchSize) this.hooks.flushSoon();
  }

  private settle(n: number): void {
    this.settledSeq += n;
    while (this.settleWaiters.length > 0) {
      const i = this.settleWaiters.findIndex((w) => w.target <= this.settledSeq);
      if (i < 0) break;
      this.settleWaiters.splice(i, 1)[0]!.resolve();
    }
    this.admitWaiters();
  }

  private admitWaiters(): void {
    while (this.roomWaiters.length > 0) {
      const w = this.roomWaiters[0]!;
      if (this.isFull(w.item.size)) break;
      this.roomWaiters.shift();
      if (w.timer) clearTimeout(w.timer);
      this.push(w.item);
      w.resolve();
    }
  }
}
