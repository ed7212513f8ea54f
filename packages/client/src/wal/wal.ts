/**
 * The producer's write-ahead log: numbered records in segment files, a checkpoint of the highest
 * offset the edge acknowledged, and one sequential reader for the sender.
 *
 * Layout of `dir`:
 *   <20-digit base offset>.wal   segments, records as in format.ts; the last one is appended to
 *   checkpoint                   16 bytes, replaced atomically (tmp + fsync + rename + dir fsync)
 *   LOCK                         pid of the process using the directory
 *   quarantine/                  originals of segments that recovery had to rewrite (bounded)
 *
 * Everything that touches files goes through one mutex, so the writer, the reader, segment
 * deletion and the checkpoint never interleave on a file.
 */
import { constants as fsConstants } from 'node:fs';
import { copyFile, mkdir, open, readdir, readFile, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { acquireLockFile, fsyncDir, LockHeldError, writeFileAtomic, type HeldLock } from '@ingest/fsutil';
import { IngestClientError } from '../errors.ts';
import {
  CHECKPOINT_BYTES,
  checkRecord,
  decodeCheckpoint,
  encodeCheckpoint,
  encodeRecord,
  parseSegmentFileName,
  recordSize,
  scanSegment,
  segmentFileName,
} from './format.ts';
import { Mutex } from './mutex.ts';

export type FsyncPolicy = 'always' | 'perBatch' | 'interval';

export interface WalOptions {
  dir: string;
  /** A segment is sealed and a new one started once the next write would pass this size. */
  segmentBytes: number;
  /** 'interval' leaves syncing to the caller's timer (sync()); the others sync every append. */
  fsync: FsyncPolicy;
  /** Rewritten segments' originals kept for inspection; the oldest beyond this are deleted. */
  maxQuarantineFiles?: number;
}

export interface RecoveryReport {
  segments: number;
  /** Records on disk above the checkpoint: what the sender still has to deliver. */
  unackedRecords: number;
  /** Records above the checkpoint that were lost to a torn write or corruption. */
  corruptRecords: number;
  /** Bytes cut from segment tails or dropped by rewriting. */
  removedBytes: number;
  quarantined: string[];
  checkpoint: 'ok' | 'missing' | 'corrupt';
  /** The LOCK file named a process that no longer runs (the previous owner crashed). */
  staleLock: boolean;
}

export interface WalItem {
  payload: Buffer;
  appendedAt: number;
}

export interface WalRecord {
  offset: number;
  appendedAt: number;
  payload: Buffer;
}

export interface ReadResult {
  records: WalRecord[];
  /** Payload bytes in `records`. */
  bytes: number;
  /** Records found damaged while reading (skipped; counted by the caller). */
  lost: number;
}

/** An append that failed after `written` of its items reached the file. */
export class WalWriteError extends Error {
  constructor(
    readonly written: number,
    cause: unknown,
  ) {
    super(`WAL write failed after ${written} records: ${(cause as Error)?.message ?? String(cause)}`, { cause });
    this.name = 'WalWriteError';
  }
}

interface SegmentMeta {
  base: number;
  file: string;
  size: number;
  count: number;
  /** base - 1 while empty. */
  lastOffset: number;
  /** appendedAt of the first record; 0 while empty. */
  firstAppendedAt: number;
  deleted: boolean;
}

const CHECKPOINT_FILE = 'checkpoint';
const LOCK_FILE = 'LOCK';
const QUARANTINE_DIR = 'quarantine';
/** A segment larger than this is not read into memory at recovery; it is quarantined whole. */
const MAX_RECOVERY_READ_BYTES = 1024 * 1024 * 1024;
const READ_CHUNK_BYTES = 256 * 1024;

export class Wal {
  private readonly mutex = new Mutex();
  private readonly segments: SegmentMeta[] = [];
  private active!: SegmentMeta;
  private activeFh: FileHandle | undefined;
  private dirty = false;
  private closed = false;
  private acked = -1;
  private persistedAcked = -2;
  private next = 0;
  // The sender's read position.
  private rSeg!: SegmentMeta;
  private rPos = 0;
  private rExpected = 0;
  private rCountInSeg = 0;
  private rFh: FileHandle | undefined;
  private rFhSeg: SegmentMeta | undefined;

  private constructor(
    private readonly opts: Required<WalOptions>,
    readonly recovery: RecoveryReport,
    private readonly lock: HeldLock,
  ) {}

  /**
   * Opens (creating if needed) and recovers the WAL. A damaged log never makes this throw: torn
   * tails are cut back, damaged regions are cut out (the original kept in quarantine/), a bad
   * checkpoint means redelivering from the oldest segment. It throws only when the directory
   * itself is unusable or another live process holds it.
   */
  static async open(options: WalOptions): Promise<Wal> {
    const opts: Required<WalOptions> = { maxQuarantineFiles: 8, ...options };
    await mkdir(opts.dir, { recursive: true });
    const lock = await lockDir(opts.dir);
    const report: RecoveryReport = { segments: 0, unackedRecords: 0, corruptRecords: 0, removedBytes: 0, quarantined: [], checkpoint: 'ok', staleLock: lock.tookOver };
    const wal = new Wal(opts, report, lock);
    try {
      await wal.recover();
    } catch (e) {
      await lock.release();
      throw e;
    }
    return wal;
  }

  get ackedOffset(): number {
    return this.acked;
  }

  get nextOffset(): number {
    return this.next;
  }

  /** True while the reader has records the writer wrote and it has not returned yet. */
  get hasUnread(): boolean {
    if (this.rPos < this.rSeg.size) return true;
    return this.segments.some((s) => s.base > this.rSeg.base && s.count > 0);
  }

  get diskBytes(): number {
    let n = 0;
    for (const s of this.segments) n += s.size;
    return n;
  }

  /** Bytes of segments that still hold unacknowledged records: what the disk budget is charged. */
  get usedBytes(): number {
    let n = 0;
    for (const s of this.segments) if (s.lastOffset > this.acked) n += s.size;
    return n;
  }

  /** Bytes that reclaim() can free now. */
  get reclaimableBytes(): number {
    return this.diskBytes - this.usedBytes;
  }

  get segmentCount(): number {
    return this.segments.length;
  }

  /**
   * When the oldest record the reader has not yet returned was appended (segment granularity: the
   * first record of the reader's segment), or undefined when the reader is caught up.
   */
  oldestUnreadAppendedAt(): number | undefined {
    if (!this.hasUnread) return undefined;
    const s = this.rPos < this.rSeg.size ? this.rSeg : this.segments.find((x) => x.base > this.rSeg.base && x.count > 0);
    return s && s.firstAppendedAt > 0 ? s.firstAppendedAt : undefined;
  }

  /** Appends items in order, assigning consecutive offsets; syncs unless the policy is 'interval'. */
  append(items: readonly WalItem[]): Promise<{ first: number; last: number }> {
    return this.mutex.run(async () => {
      this.assertOpen();
      const first = this.next;
      let i = 0;
      try {
        while (i < items.length) {
          const seg = this.active;
          let bytes = 0;
          let j = i;
          while (j < items.length) {
            const s = recordSize(items[j]!.payload.length);
            if (seg.size + bytes + s > this.opts.segmentBytes && seg.size + bytes > 0) break;
            bytes += s;
            j++;
          }
          if (j === i) {
            await this.roll();
            continue;
          }
          const buf = Buffer.allocUnsafe(bytes);
          let p = 0;
          for (let k = i; k < j; k++) {
            const it = items[k]!;
            p = encodeRecord(buf, p, this.next + (k - i), it.appendedAt, it.payload);
          }
          const fh = await this.activeHandle();
          await writeFully(fh, buf, seg.size);
          if (seg.count === 0) seg.firstAppendedAt = items[i]!.appendedAt;
          seg.size += bytes;
          seg.count += j - i;
          this.next += j - i;
          seg.lastOffset = this.next - 1;
          i = j;
          if (this.opts.fsync === 'interval') this.dirty = true;
          else await fh.datasync();
        }
      } catch (e) {
        throw new WalWriteError(i, e);
      }
      return { first, last: this.next - 1 };
    });
  }

  /** fdatasync of the active segment if anything was written since the last sync. */
  sync(): Promise<void> {
    return this.mutex.run(async () => {
      if (this.closed || !this.dirty || !this.activeFh) return;
      this.dirty = false;
      await this.activeFh.datasync();
    });
  }

  /**
   * Returns the next records after the last read, up to `maxRecords` and (beyond the first record)
   * `maxBytes` of payload. Empty when caught up with the writer.
   */
  read(maxRecords: number, maxBytes: number): Promise<ReadResult> {
    return this.mutex.run(async () => {
      this.assertOpen();
      const out: ReadResult = { records: [], bytes: 0, lost: 0 };
      while (out.records.length < maxRecords) {
        if (this.rSeg.deleted) this.moveReaderPast(this.rSeg);
        const seg = this.rSeg;
        if (this.rPos >= seg.size) {
          if (seg === this.active) break;
          this.moveReaderPast(seg);
          continue;
        }
        const fh = await this.readerHandle(seg);
        const len = Math.min(seg.size - this.rPos, Math.max(READ_CHUNK_BYTES, Math.min(maxBytes, 16 * 1024 * 1024)));
        let buf = Buffer.allocUnsafe(len);
        await readFully(fh, buf, this.rPos);
        let p = 0;
        let stop = false;
        while (out.records.length < maxRecords) {
          if (p >= buf.length) break;
          let c = checkRecord(buf, p, buf.length, this.rExpected, Number.MAX_SAFE_INTEGER);
          if (c.kind === 'torn' && p === 0 && buf.length >= 4) {
            // One record larger than the chunk: read exactly it.
            const need = 8 + buf.readUInt32BE(0);
            if (need <= seg.size - this.rPos && need > buf.length) {
              buf = Buffer.allocUnsafe(need);
              await readFully(fh, buf, this.rPos);
              c = checkRecord(buf, 0, buf.length, this.rExpected, Number.MAX_SAFE_INTEGER);
            }
          }
          if (c.kind === 'torn') {
            if (p === 0) c = { kind: 'corrupt' };
            else break;
          }
          if (c.kind === 'corrupt') {
            // Damage that appeared after recovery (bit rot, a hand edit): give up on the rest of
            // this segment rather than guess, count it, and make sure new writes go elsewhere.
            out.lost += Math.max(1, seg.count - this.rCountInSeg);
            if (seg === this.active) await this.roll();
            this.moveReaderPast(seg);
            stop = true;
            break;
          }
          const r = c.record;
          const n = r.payloadEnd - r.payloadStart;
          if (out.records.length > 0 && out.bytes + n > maxBytes) {
            stop = true;
            break;
          }
          out.records.push({ offset: r.offset, appendedAt: r.appendedAt, payload: Buffer.from(buf.subarray(r.payloadStart, r.payloadEnd)) });
          out.bytes += n;
          p += r.size;
          this.rPos += r.size;
          this.rExpected = r.offset + 1;
          this.rCountInSeg++;
        }
        if (stop) break;
      }
      return out;
    });
  }

  /** Records the edge's acknowledgement up to `offset` (inclusive). In memory until persisted. */
  ack(offset: number): void {
    if (offset > this.acked) this.acked = Math.min(offset, this.next - 1);
  }

  /** Writes the checkpoint atomically if it moved, then deletes segments wholly below it. */
  persistCheckpoint(): Promise<void> {
    return this.mutex.run(async () => {
      if (this.closed) return;
      await this.writeCheckpoint();
      await this.deleteAcked(false);
    });
  }

  /**
   * Frees the disk held by acknowledged records, sealing the active segment too when everything in
   * it is acknowledged (so a quiet producer with a full budget can reclaim its last segment).
   */
  reclaim(): Promise<number> {
    return this.mutex.run(async () => {
      this.assertOpen();
      return this.deleteAcked(true);
    });
  }

  /**
   * dropOldest: deletes the oldest segment that still holds unacknowledged records. Returns how
   * many of its records the sender had not read yet (those are lost; ones already read are in a
   * batch in memory and still get delivered), or null when there is nothing to drop.
   */
  dropOldest(): Promise<{ unread: number; bytes: number } | null> {
    return this.mutex.run(async () => {
      this.assertOpen();
      let seg = this.segments.find((s) => s.lastOffset > this.acked && s.count > 0);
      if (!seg) return null;
      if (seg === this.active) {
        await this.roll();
        seg = this.segments.find((s) => s.lastOffset > this.acked && s.count > 0 && s !== this.active);
        if (!seg) return null;
      }
      let unread = 0;
      if (seg === this.rSeg) unread = seg.count - this.rCountInSeg;
      else if (seg.base > this.rSeg.base) unread = seg.count;
      const bytes = seg.size;
      await this.deleteSegment(seg);
      return { unread, bytes };
    });
  }

  /** Syncs, persists the checkpoint, closes files and releases the directory. Idempotent. */
  close(): Promise<void> {
    return this.mutex.run(async () => {
      if (this.closed) return;
      try {
        if (this.activeFh) {
          if (this.dirty) await this.activeFh.datasync();
          await this.activeFh.close();
          this.activeFh = undefined;
        }
        await this.rFh?.close();
        this.rFh = undefined;
        await this.writeCheckpoint();
      } finally {
        this.closed = true;
        await this.lock.release();
      }
    });
  }

  // ---- internals (called with the mutex held) ----

  private assertOpen(): void {
    if (this.closed) throw new IngestClientError('CLIENT_ERR_CLOSED');
  }

  private async recover(): Promise<void> {
    const { dir } = this.opts;
    const names = await readdir(dir);
    for (const n of names) if (n.endsWith('.tmp')) await rm(path.join(dir, n), { force: true });

    let acked = -1;
    try {
      const got = decodeCheckpoint(await readFile(path.join(dir, CHECKPOINT_FILE)));
      if (got === null) this.recovery.checkpoint = 'corrupt';
      else acked = got;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') this.recovery.checkpoint = 'missing';
      else {
        // Unreadable (a directory, EIO…): move it aside so writing a new one cannot fail on it.
        this.recovery.checkpoint = 'corrupt';
        await this.quarantine(path.join(dir, CHECKPOINT_FILE), true);
      }
    }

    const bases = names
      .map((n) => parseSegmentFileName(n))
      .filter((b): b is number => b !== null)
      .sort((a, b) => a - b);
    // Without a checkpoint, everything on disk is redelivered (the edge's dedup absorbs repeats).
    if (this.recovery.checkpoint !== 'ok') acked = (bases[0] ?? 0) - 1;
    this.acked = acked;

    let readerStart: { seg: SegmentMeta; pos: number; expected: number; countBefore: number } | undefined;
    for (let i = 0; i < bases.length; i++) {
      const base = bases[i]!;
      const nextBase = bases[i + 1];
      const file = path.join(dir, segmentFileName(base));
      if (nextBase !== undefined && nextBase - 1 <= acked) {
        await rm(file, { force: true });
        continue;
      }
      const maxOffset = nextBase === undefined ? Number.MAX_SAFE_INTEGER : nextBase - 1;
      const firstUnacked = Math.max(base, acked + 1);
      const lostBetween = (from: number, to: number) => Math.max(0, to - Math.max(from, firstUnacked));
      let buf: Buffer;
      try {
        const st = await stat(file);
        if (st.size > MAX_RECOVERY_READ_BYTES) throw new Error(`segment is ${st.size} bytes`);
        buf = await readFile(file);
      } catch {
        // Unreadable: keep the file for inspection, carry on without it.
        await this.quarantine(file, true);
        this.recovery.corruptRecords += nextBase === undefined ? 1 : lostBetween(base, nextBase);
        continue;
      }
      const scan = scanSegment(buf, buf.length, base, maxOffset);
      for (const g of scan.gaps) this.recovery.corruptRecords += Math.max(g.expectedOffset > acked ? 1 : 0, lostBetween(g.expectedOffset, g.resumedOffset));
      if (scan.badTail) {
        const t = scan.badTail;
        this.recovery.corruptRecords += nextBase === undefined ? (t.expectedOffset > acked ? 1 : 0) : lostBetween(t.expectedOffset, nextBase);
      }
      let size = scan.goodEnd;
      if (scan.gaps.length > 0) {
        // Damage in the middle: write the good records to a new file, keep the original aside.
        const good = Buffer.concat(scan.records.map((r) => buf.subarray(r.pos, r.pos + r.size)));
        await this.quarantine(file, false);
        await writeFileAtomic(file, good);
        this.recovery.removedBytes += buf.length - good.length;
        size = good.length;
      } else if (scan.badTail) {
        const fh = await open(file, 'r+');
        try {
          await fh.truncate(scan.goodEnd);
          await fh.datasync();
        } finally {
          await fh.close();
        }
        this.recovery.removedBytes += buf.length - scan.goodEnd;
      }
      const last = scan.records[scan.records.length - 1];
      if (!last || last.offset <= acked) {
        await rm(file, { force: true });
        continue;
      }
      const meta: SegmentMeta = { base, file, size, count: scan.records.length, lastOffset: last.offset, firstAppendedAt: scan.records[0]!.appendedAt, deleted: false };
      this.segments.push(meta);
      let posInNew = 0;
      let before = 0;
      for (const r of scan.records) {
        if (r.offset > acked) {
          this.recovery.unackedRecords++;
          if (!readerStart) readerStart = { seg: meta, pos: posInNew, expected: r.offset, countBefore: before };
        }
        posInNew += r.size;
        before++;
      }
    }

    const tail = this.segments[this.segments.length - 1];
    // Never hand out an offset that may have existed: not below any segment name seen, even one
    // that turned out to be empty or unreadable.
    this.next = Math.max(tail ? tail.lastOffset + 1 : 0, acked + 1, bases[bases.length - 1] ?? 0, 0);
    await this.startSegment(this.next);
    await fsyncDir(dir);
    this.recovery.segments = this.segments.length;
    if (readerStart) {
      this.rSeg = readerStart.seg;
      this.rPos = readerStart.pos;
      this.rExpected = readerStart.expected;
      this.rCountInSeg = readerStart.countBefore;
    } else {
      this.rSeg = this.active;
      this.rPos = 0;
      this.rExpected = this.next;
      this.rCountInSeg = 0;
    }
    await this.writeCheckpoint();
  }

  private async startSegment(base: number): Promise<void> {
    const file = path.join(this.opts.dir, segmentFileName(base));
    // 'wx': a segment is never silently overwritten; a name clash here would be a bug, not data.
    this.activeFh = await open(file, 'wx');
    const meta: SegmentMeta = { base, file, size: 0, count: 0, lastOffset: base - 1, firstAppendedAt: 0, deleted: false };
    this.segments.push(meta);
    this.active = meta;
  }

  private async activeHandle(): Promise<FileHandle> {
    if (!this.activeFh) this.activeFh = await open(this.active.file, 'r+');
    return this.activeFh;
  }

  /** Seals the active segment (synced, so a sealed segment is always durable) and starts the next. */
  private async roll(): Promise<void> {
    if (this.active.size === 0) return;
    if (this.activeFh) {
      await this.activeFh.datasync();
      await this.activeFh.close();
      this.activeFh = undefined;
    }
    this.dirty = false;
    await this.startSegment(this.next);
    await fsyncDir(this.opts.dir);
  }

  private moveReaderPast(seg: SegmentMeta): void {
    const nextSeg = this.segments.find((s) => s.base > seg.base) ?? this.active;
    this.rSeg = nextSeg;
    this.rPos = 0;
    this.rCountInSeg = 0;
    this.rExpected = Math.max(this.rExpected, nextSeg.base);
  }

  private async readerHandle(seg: SegmentMeta): Promise<FileHandle> {
    if (this.rFh && this.rFhSeg === seg) return this.rFh;
    await this.rFh?.close();
    this.rFh = undefined;
    this.rFh = await open(seg.file, 'r');
    this.rFhSeg = seg;
    return this.rFh;
  }

  private async deleteAcked(includeActive: boolean): Promise<number> {
    let freed = 0;
    if (includeActive && this.active.count > 0 && this.active.lastOffset <= this.acked) await this.roll();
    for (const s of [...this.segments]) {
      if (s === this.active || s.lastOffset > this.acked) continue;
      freed += s.size;
      await this.deleteSegment(s);
    }
    return freed;
  }

  private async deleteSegment(seg: SegmentMeta): Promise<void> {
    if (this.rFhSeg === seg) {
      await this.rFh?.close();
      this.rFh = undefined;
      this.rFhSeg = undefined;
    }
    await unlink(seg.file).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw e;
    });
    seg.deleted = true;
    const i = this.segments.indexOf(seg);
    if (i >= 0) this.segments.splice(i, 1);
    if (this.rSeg === seg) this.moveReaderPast(seg);
  }

  private async writeCheckpoint(): Promise<void> {
    if (this.persistedAcked === this.acked) return;
    const target = this.acked;
    const file = path.join(this.opts.dir, CHECKPOINT_FILE);
    await writeFileAtomic(file, encodeCheckpoint(target));
    this.persistedAcked = target;
  }

  private async quarantine(file: string, move: boolean): Promise<void> {
    const qdir = path.join(this.opts.dir, QUARANTINE_DIR);
    await mkdir(qdir, { recursive: true });
    const dest = path.join(qdir, `${path.basename(file)}.${Date.now()}.bad`);
    if (move) await rename(file, dest);
    else await copyFile(file, dest, fsConstants.COPYFILE_FICLONE);
    this.recovery.quarantined.push(dest);
    const kept = (await readdir(qdir)).filter((n) => n.endsWith('.bad')).sort((a, b) => quarantineTime(a) - quarantineTime(b));
    for (const old of kept.slice(0, Math.max(0, kept.length - this.opts.maxQuarantineFiles))) await rm(path.join(qdir, old), { force: true });
  }
}

function quarantineTime(name: string): number {
  const m = /\.(\d+)\.bad$/.exec(name);
  return m ? Number(m[1]) : 0;
}

async function writeFully(fh: FileHandle, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesWritten } = await fh.write(buf, done, buf.length - done, position + done);
    done += bytesWritten;
  }
}

async function readFully(fh: FileHandle, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await fh.read(buf, done, buf.length - done, position + done);
    if (bytesRead === 0) throw new Error(`unexpected end of segment at ${position + done}`);
    done += bytesRead;
  }
}

/** Takes the directory for this process (tookOver: the previous owner had died). */
async function lockDir(dir: string): Promise<HeldLock> {
  try {
    return await acquireLockFile(path.join(dir, LOCK_FILE));
  } catch (e) {
    if (e instanceof LockHeldError) throw new IngestClientError('CLIENT_ERR_WAL_LOCKED', [dir, e.holder]);
    throw e;
  }
}

export const WAL_FILES = { checkpoint: CHECKPOINT_FILE, lock: LOCK_FILE, quarantine: QUARANTINE_DIR, checkpointBytes: CHECKPOINT_BYTES } as const;
