/**
 * One partition: an ordered list of segments, the append path (a bounded queue drained by one
 * writer loop doing group commit), recovery on open, and reads.
 *
 * Visibility: with fsync 'always', readers (consumers, admin reads) see a record only after it has
 * been fsync'd. Otherwise a crash could take back records a consumer already loaded into ClickHouse,
 * and the offsets would be handed out again to different records, whose offset-derived dedup token
 * would then collide with the lost ones.
 *
 * Failed appends: after a write or fsync error the partition refuses appends (LogUnavailableError)
 * and reports itself in health() until a recovery attempt, retried with backoff in the writer loop,
 * has brought the file back to a state it can prove: a fresh descriptor, the unsynced bytes
 * re-verified and rewritten, an fsync that succeeded, and a probe write that shows the disk takes
 * data again. Nothing is acknowledged on top of a failed fsync, and no visible offset is reused.
 */
import { mkdir, open, readdir, stat, unlink, type FileHandle } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { LogUnavailableError, type StoredMessage } from '../types.ts';
import {
  bodyValueLength,
  decodeBody,
  encodeRecord,
  scanRecords,
  Visit,
  type DamagedRegion,
  type PreparedMessage,
  type RecordView,
} from './format.ts';
import { fsyncDir, isErrno, writeFileAtomic } from '@ingest/fsutil';
import { backoffMs } from '@ingest/queue';
import { parseSegmentFileName, Segment, segmentFileName } from './segment.ts';

export type FsyncPolicy = 'always' | 'interval' | 'never';

export interface TornTailInfo {
  topic: string;
  partition: number;
  /** Path of the segment file whose tail was bad. */
  segment: string;
  /** Bytes after the last good record (removed, unless the log is read-only). */
  truncatedBytes: number;
}

/**
 * Damaged bytes between good records (a flipped bit, a bad sector): readers step over them to the
 * next record that verifies, so only the records in this stretch are lost.
 */
export interface CorruptRecordInfo {
  topic: string;
  partition: number;
  segment: string;
  /** File position and length of the damaged stretch. */
  position: number;
  bytes: number;
  /** Offsets lost, [firstOffset, nextOffset): never read, never handed out again. */
  firstOffset: number;
  nextOffset: number;
  /** Records this cost, for counting: the offsets lost, at least 1 (damage is never free). */
  records: number;
  /** Copy of the damaged bytes; null on a read-only log (it never writes) or when the copy failed. */
  quarantine: string | null;
}

/** Partition subdirectory holding copies of damaged stretches, for forensics; never read back. */
export const QUARANTINE_DIR = 'quarantine';

export interface PartitionConfig {
  topic: string;
  partition: number;
  dir: string;
  readOnly: boolean;
  fsync: FsyncPolicy;
  segmentBytes: number;
  retentionBytes: number;
  /**
   * The lowest offset some consumer group still has to read (undefined: no group reads this
   * partition). Retention never deletes at or past it, so a slow loader never loses acknowledged
   * data to the size limit; the log grows until disk runs out and appends fail (503) instead.
   */
  protectedOffset?: () => number | undefined;
  /** Called when retention wanted to delete a segment some group has not read yet. */
  onRetentionHeld?: () => void;
  onTornTail: (info: TornTailInfo) => void;
  onCorruptRecord: (info: CorruptRecordInfo) => void;
  /** Called after records became visible, to wake consumers in this process. */
  onAppend: () => void;
  /** Background failures that have no caller to reject (retention unlinks, index writes). */
  onBackgroundError: (err: unknown) => void;
  /** Backoff between recovery attempts after a failed append: first delay, doubling up to max. */
  recoveryInitialMs: number;
  recoveryMaxMs: number;
}

/** Why a partition refuses appends right now (see health()). */
export interface PartitionFailure {
  topic: string;
  partition: number;
  /** What failed first, e.g. "fsync failed: EIO: i/o error". */
  error: string;
  /** Epoch ms of the first failure of this episode. */
  since: number;
  /** Recovery attempts that failed so far. */
  attempts: number;
}

export interface ReadResult {
  messages: StoredMessage[];
  /** Offset to read from next (past gaps left by retention or skipped corruption too). */
  next: number;
  /** True when the read stopped because the next message would exceed the byte budget. */
  byteLimited: boolean;
}

interface PendingAppend {
  messages: PreparedMessage[];
  bytes: number;
  resolve: (range: { firstOffset: number; lastOffset: number }) => void;
  reject: (err: unknown) => void;
}

/** Largest single write: bounds the buffer a group commit allocates. */
const MAX_GROUP_BYTES = 8 * 1024 * 1024;
/** Recovery scans in bigger chunks: it reads a whole segment sequentially. */
const RECOVERY_CHUNK_BYTES = 1024 * 1024;
/**
 * What a recovery attempt writes and fsyncs beside the segments to show the disk takes data again
 * (a truncate or fsync alone succeeds on a full disk). A little more than a typical group commit.
 */
const PROBE_BYTES = 64 * 1024;
const PROBE_FILE = '.append-probe.tmp';

/**
 * 'write': the failed write was taken back (truncated), the file is as acknowledged; only the disk
 * has to prove it takes data again. 'state': an fsync failed or the take-back did, so the bytes
 * after the last good fsync are of unknown durability and must be re-verified.
 */
type FailureKind = 'write' | 'state';

export class Partition {
  private segments: Segment[] = [];
  private totalBytes = 0;
  /** Writer only: the active (last) segment, opened for append. */
  private active: FileHandle | null = null;
  /** Next offset to assign (writer) / next offset seen on disk (read-only). */
  private nextOffset = 0;
  /** Readers see records below visibleOffset, i.e. bytes below visibleEnd of the last segment. */
  private visibleOffset = 0;
  private visibleEnd = 0;
  private readonly queue: PendingAppend[] = [];
  private pumping: Promise<void> | null = null;
  private flushRequested = false;
  private dirty = false;
  /** Last segment bytes / next offset as of the last fsync that succeeded (or the scan at open). */
  private syncedEnd = 0;
  private syncedOffset = 0;
  private failure: { kind: FailureKind; error: LogUnavailableError; since: number; attempts: number } | null = null;
  private recoveryTimer: NodeJS.Timeout | null = null;
  private recoveryDue = false;
  private closed = false;
  private closing: Promise<void> | null = null;
  private refreshing: Promise<void> | null = null;

  private constructor(private readonly cfg: PartitionConfig) {}

  /**
   * Opens a partition: lists segments, scans the last one and (unless read-only) truncates a torn
   * or corrupt tail back to the last good record. Never throws because of bad data, only on I/O.
   */
  static async open(cfg: PartitionConfig): Promise<Partition> {
    const p = new Partition(cfg);
    if (cfg.readOnly) {
      await p.refresh(true);
    } else {
      await p.openWriter();
    }
    return p;
  }

  get id(): number {
    return this.cfg.partition;
  }

  private async listSegments(): Promise<Array<{ base: number; size: number }>> {
    let names: string[];
    try {
      names = await readdir(this.cfg.dir);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return [];
      throw err;
    }
    const bases = names.map(parseSegmentFileName).filter((b): b is number => b !== null);
    bases.sort((a, b) => a - b);
    const out: Array<{ base: number; size: number }> = [];
    for (const base of bases) {
      try {
        out.push({ base, size: (await stat(join(this.cfg.dir, segmentFileName(base)))).size });
      } catch (err) {
        // Deleted by retention between readdir and stat (read-only view of a live log).
        if (!isErrno(err, 'ENOENT')) throw err;
      }
    }
    return out;
  }

  private async openWriter(): Promise<void> {
    const { cfg } = this;
    await mkdir(cfg.dir, { recursive: true });
    const listed = await this.listSegments();
    if (listed.length === 0) {
      listed.push({ base: 0, size: 0 });
      await (await open(new Segment(cfg.dir, 0, 0).path, 'a')).close();
      if (cfg.fsync !== 'never') await fsyncDir(cfg.dir);
    }
    this.segments = listed.map((s) => new Segment(cfg.dir, s.base, s.size));
    const last = this.segments[this.segments.length - 1]!;
    // The active segment's index lives in memory; a stale file would describe bytes we may truncate.
    await unlink(last.indexPath).catch(() => undefined);
    // Left behind if the process died during a recovery probe.
    await unlink(join(cfg.dir, PROBE_FILE)).catch(() => undefined);
    const fh = await open(last.path, 'a+');
    try {
      const fileSize = last.size;
      last.size = 0;
      const damages: DamagedRegion[] = [];
      const scan = await this.scanTail(fh, last, fileSize, damages);
      for (const d of damages) await this.reportDamage(fh, last, d);
      // Only bad bytes with no good record after them are a torn tail; those are cut.
      if (scan.goodEnd < fileSize) {
        await fh.truncate(scan.goodEnd);
        if (cfg.fsync !== 'never') await fh.datasync();
        cfg.onTornTail({ topic: cfg.topic, partition: cfg.partition, segment: last.path, truncatedBytes: fileSize - scan.goodEnd });
      }
    } catch (err) {
      await fh.close();
      throw err;
    }
    this.active = fh;
    this.nextOffset = last.nextOffset;
    this.visibleOffset = last.nextOffset;
    this.visibleEnd = last.size;
    this.syncedEnd = last.size;
    this.syncedOffset = last.nextOffset;
    this.totalBytes = this.segments.reduce((sum, s) => sum + s.size, 0);
    await this.enforceRetention();
  }

  /**
   * Scans `seg` from its known good end up to fileSize, extending size/nextOffset/index; damaged
   * stretches followed by good records are stepped over and collected in `damages`.
   */
  private async scanTail(fh: FileHandle, seg: Segment, fileSize: number, damages: DamagedRegion[]) {
    let afterDamage = false;
    const scan = await scanRecords(
      fh,
      seg.size,
      fileSize,
      seg.size === 0 ? seg.base : seg.nextOffset,
      (r) => {
        seg.noteRecord(r.offset, r.position, afterDamage);
        afterDamage = false;
        return Visit.Continue;
      },
      {
        chunkBytes: RECOVERY_CHUNK_BYTES,
        resync: {
          trustedStart: true,
          onDamage: (d) => {
            damages.push(d);
            afterDamage = true;
          },
        },
      },
    );
    seg.size = scan.goodEnd;
    seg.nextOffset = scan.nextOffset;
    return scan;
  }

  /**
   * Read-only view: re-lists segments and scans what the writer appended since last time. The
   * writer may be mid-write, so an incomplete tail is normal here and only reported on open.
   */
  async refresh(initial = false): Promise<void> {
    if (!this.cfg.readOnly) return;
    if (this.refreshing !== null) return this.refreshing;
    this.refreshing = this.doRefresh(initial).finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  private async doRefresh(initial: boolean): Promise<void> {
    const { cfg } = this;
    const listed = await this.listSegments();
    const known = new Map(this.segments.map((s) => [s.base, s]));
    const segments = listed.map((s) => {
      const seg = known.get(s.base) ?? new Segment(cfg.dir, s.base, 0);
      return { seg, fileSize: s.size };
    });
    const lastEntry = segments[segments.length - 1];
    if (lastEntry !== undefined) {
      const { seg, fileSize } = lastEntry;
      if (fileSize < seg.size) {
        // The writer truncated a torn tail after we looked: start this segment over.
        seg.size = 0;
        seg.nextOffset = seg.base;
        seg.resetIndex();
      }
      if (fileSize > seg.size) {
        let fh: FileHandle;
        try {
          fh = await open(seg.path, 'r');
        } catch (err) {
          if (!isErrno(err, 'ENOENT')) throw err;
          return;
        }
        try {
          const damages: DamagedRegion[] = [];
          const scan = await this.scanTail(fh, seg, fileSize, damages);
          for (const d of damages) await this.reportDamage(fh, seg, d);
          if (initial && scan.goodEnd < fileSize) {
            cfg.onTornTail({ topic: cfg.topic, partition: cfg.partition, segment: seg.path, truncatedBytes: fileSize - scan.goodEnd });
          }
        } finally {
          await fh.close();
        }
      }
      this.nextOffset = seg.nextOffset;
      this.visibleOffset = seg.nextOffset;
      this.visibleEnd = seg.size;
    }
    for (const { seg, fileSize } of segments) if (seg !== lastEntry?.seg) seg.size = fileSize;
    this.segments = segments.map((s) => s.seg);
  }

  /** Retained offsets [low, high). */
  async offsets(): Promise<{ low: number; high: number }> {
    await this.refresh();
    const first = this.segments[0];
    return { low: first === undefined ? this.visibleOffset : Math.min(first.base, this.visibleOffset), high: this.visibleOffset };
  }

  /**
   * Queues messages to be appended contiguously; resolves once they are written (and fsync'd under
   * 'always'). The caller bounds how many appends can be queued.
   */
  append(messages: PreparedMessage[]): Promise<{ firstOffset: number; lastOffset: number }> {
    if (this.cfg.readOnly) return Promise.reject(new LogUnavailableError('the embedded log is open read-only'));
    if (this.failure !== null) return Promise.reject(this.failure.error);
    if (this.closed) return Promise.reject(new LogUnavailableError('the embedded log is closed'));
    let bytes = 0;
    for (const m of messages) bytes += m.size;
    return new Promise((resolve, reject) => {
      this.queue.push({ messages, bytes, resolve, reject });
      this.kick();
    });
  }

  /** Null while appends work; otherwise why they are refused, until recovery succeeds. */
  health(): PartitionFailure | null {
    const f = this.failure;
    if (f === null) return null;
    return {
      topic: this.cfg.topic,
      partition: this.cfg.partition,
      error: f.error.message,
      since: f.since,
      attempts: f.attempts,
    };
  }

  /** Asks the writer loop to fsync whatever was written since the last fsync ('interval' policy). */
  requestFlush(): void {
    if (!this.dirty || this.closed) return;
    this.flushRequested = true;
    this.kick();
  }

  private kick(): void {
    if (this.pumping !== null) return;
    this.pumping = this.pump().finally(() => {
      this.pumping = null;
      if (this.queue.length > 0 || this.flushRequested) this.kick();
    });
  }

  /** The single writer loop: everything that touches the active file handle runs here, in order. */
  private async pump(): Promise<void> {
    for (;;) {
      if (this.failure !== null && this.recoveryDue && !this.closed) {
        this.recoveryDue = false;
        await this.recover();
      }
      if (this.failure !== null) {
        for (const item of this.queue.splice(0)) item.reject(this.failure.error);
        this.flushRequested = false;
        return;
      }
      if (this.queue.length > 0) {
        const group = await this.takeGroup();
        if (group.length === 0) continue;
        try {
          await this.writeGroup(group);
        } catch (err) {
          // Unexpected (a bug, not I/O: I/O errors are handled inside). Settle every waiter rather than
          // leave a send hanging, and stop appending until recovery re-verified the file.
          const failure = this.fail('state', 'internal error', err);
          for (const item of group) item.reject(failure);
        }
      } else if (this.flushRequested) {
        this.flushRequested = false;
        await this.flushDirty();
      } else {
        return;
      }
    }
  }

  /**
   * Group commit: every append queued while the previous write/fsync ran goes out in one write and
   * one fsync. Each append's messages stay contiguous and in order.
   */
  private async takeGroup(): Promise<PendingAppend[]> {
    const { cfg } = this;
    const first = this.queue[0]!;
    let seg = this.segments[this.segments.length - 1]!;
    if (seg.size > 0 && seg.size + first.bytes > cfg.segmentBytes) {
      try {
        await this.roll();
      } catch (err) {
        // The queue behind it is refused by the pump, since the partition now counts as failed.
        this.queue.shift();
        first.reject(this.failure?.error ?? this.fail('write', 'cannot start a new segment', err));
        return [];
      }
      seg = this.segments[this.segments.length - 1]!;
    }
    const room = Math.max(cfg.segmentBytes - seg.size, 0);
    let groupBytes = 0;
    let n = 0;
    while (n < this.queue.length) {
      const b = this.queue[n]!.bytes;
      if (n > 0 && (groupBytes + b > room || groupBytes + b > MAX_GROUP_BYTES)) break;
      groupBytes += b;
      n++;
    }
    return this.queue.splice(0, n);
  }

  private async writeGroup(group: PendingAppend[]): Promise<void> {
    const { cfg } = this;
    const seg = this.segments[this.segments.length - 1]!;
    let groupBytes = 0;
    for (const item of group) groupBytes += item.bytes;
    const buf = Buffer.allocUnsafe(groupBytes);
    const draft = seg.pendingEntries();
    const ranges: Array<{ firstOffset: number; lastOffset: number }> = [];
    let pos = 0;
    let offset = this.nextOffset;
    for (const item of group) {
      const firstOffset = offset;
      for (const m of item.messages) {
        draft.note(offset, seg.size + pos);
        pos = encodeRecord(buf, pos, m, offset);
        offset++;
      }
      ranges.push({ firstOffset, lastOffset: offset - 1 });
    }
    if (pos !== groupBytes) throw new Error(`encoded ${pos} bytes, measured ${groupBytes}`);

    const fh = this.active!;
    const startSize = seg.size;
    try {
      await writeFully(fh, buf);
    } catch (err) {
      let failure: LogUnavailableError;
      try {
        // Take back a partial write so the next append starts on a record boundary.
        await fh.truncate(startSize);
        failure = this.fail('write', 'append failed', err);
      } catch {
        failure = this.fail('state', 'append failed and could not be taken back', err);
      }
      for (const item of group) item.reject(failure);
      return;
    }
    seg.size += groupBytes;
    seg.nextOffset = offset;
    seg.commitEntries(draft);
    this.totalBytes += groupBytes;
    this.nextOffset = offset;

    if (cfg.fsync === 'always') {
      try {
        await fh.datasync();
      } catch (err) {
        // After a failed fsync the page cache no longer tells us what is on disk (the "fsyncgate"
        // lesson): stop appending rather than acknowledge anything on top of it.
        const failure = this.fail('state', 'fsync failed', err);
        for (const item of group) item.reject(failure);
        return;
      }
      this.syncedEnd = seg.size;
      this.syncedOffset = offset;
    } else {
      this.dirty = true;
    }
    this.visibleOffset = offset;
    this.visibleEnd = seg.size;
    group.forEach((item, i) => item.resolve(ranges[i]!));
    cfg.onAppend();
    await this.enforceRetention();
  }

  private async flushDirty(): Promise<void> {
    if (!this.dirty || this.active === null) return;
    this.dirty = false;
    const seg = this.segments[this.segments.length - 1]!;
    const [end, offset] = [seg.size, this.nextOffset];
    try {
      await this.active.datasync();
      this.syncedEnd = end;
      this.syncedOffset = offset;
    } catch (err) {
      this.fail('state', 'fsync failed', err);
    }
  }

  /**
   * Enters (or stays in) the failed state and schedules a recovery attempt. Returns the error every
   * append gets until then. The first failure of an episode is kept: it is the one to act on.
   */
  private fail(kind: FailureKind, what: string, cause: unknown): LogUnavailableError {
    const { cfg } = this;
    if (this.failure === null) {
      const reason = cause instanceof Error ? `${what}: ${cause.message}` : what;
      const error = new LogUnavailableError(`${cfg.topic}/${cfg.partition} refuses appends: ${reason}`, { cause });
      this.failure = { kind, error, since: Date.now(), attempts: 0 };
    } else if (kind === 'state') {
      this.failure.kind = 'state';
    }
    this.scheduleRecovery();
    return this.failure.error;
  }

  private scheduleRecovery(): void {
    if (this.recoveryTimer !== null || this.closed || this.failure === null) return;
    // One writer per partition retries its own disk: no herd to spread, so no jitter.
    const delay = backoffMs(this.failure.attempts + 1, { initialMs: this.cfg.recoveryInitialMs, maxMs: this.cfg.recoveryMaxMs, jitter: 'none' });
    this.recoveryTimer = setTimeout(() => {
      this.recoveryTimer = null;
      this.recoveryDue = true;
      this.kick();
    }, delay);
    this.recoveryTimer.unref();
  }

  /**
   * One recovery attempt, in the writer loop. Success means: a fresh descriptor (the old one may
   * keep reporting, or hiding, the old error), the bytes after the last good fsync re-verified and
   * rewritten, an fsync that succeeded, and a probe write beside the segments that succeeded.
   */
  private async recover(): Promise<void> {
    const { cfg } = this;
    const failure = this.failure!;
    const seg = this.segments[this.segments.length - 1]!;
    const old = this.active;
    this.active = null;
    await old?.close().catch(() => undefined);
    let fh: FileHandle | null = null;
    try {
      fh = await open(seg.path, 'a+');
      if (failure.kind === 'state') await this.restoreUnsynced(fh, seg);
      // A write whose take-back failed left bytes past the last record; appends go to the end of
      // the file, so they must go first.
      if ((await fh.stat()).size > seg.size) await fh.truncate(seg.size);
      if (cfg.fsync !== 'never') await fh.datasync();
      await probeDisk(join(cfg.dir, PROBE_FILE), cfg.fsync !== 'never');
    } catch (err) {
      await fh?.close().catch(() => undefined);
      failure.attempts++;
      failure.error = new LogUnavailableError(failure.error.message, { cause: err });
      this.scheduleRecovery();
      return;
    }
    this.active = fh;
    this.dirty = false;
    this.syncedEnd = seg.size;
    this.syncedOffset = this.nextOffset;
    const newlyVisible = this.visibleOffset < this.nextOffset;
    this.visibleOffset = this.nextOffset;
    this.visibleEnd = seg.size;
    this.failure = null;
    if (newlyVisible) cfg.onAppend();
  }

  /**
   * Brings the unsynced bytes [syncedEnd, size) of the last segment to a known state. After a failed
   * fsync the kernel may have dropped those pages, or marked them clean without writing them, so a
   * second fsync could "succeed" without writing anything. So: read them back, keep the run of
   * records that still verifies, and write that run again in place so the next fsync must write it.
   * Records that no longer verify were never acknowledged under 'always' (the ack waits for the
   * fsync) and are cut like a torn tail; under 'interval'/'never' they were acknowledged and read,
   * so their offsets must not be reused: the partition then stays failed until a restart.
   */
  private async restoreUnsynced(fh: FileHandle, seg: Segment): Promise<void> {
    const { cfg } = this;
    const from = this.syncedEnd;
    const to = seg.size;
    if (to <= from) return;
    const scan = await scanRecords(fh, from, to, this.syncedOffset, () => Visit.Continue, { chunkBytes: RECOVERY_CHUNK_BYTES });
    if (scan.goodEnd < to) {
      if (cfg.fsync !== 'always') {
        throw new Error(`${to - scan.goodEnd} bytes of acknowledged records after offset ${scan.nextOffset} no longer verify; restart the service to recover the log`);
      }
      await fh.truncate(scan.goodEnd);
      this.totalBytes -= to - scan.goodEnd;
      seg.size = scan.goodEnd;
      seg.nextOffset = scan.nextOffset;
      seg.truncateIndex(scan.goodEnd);
      this.nextOffset = scan.nextOffset;
    }
    const w = await open(seg.path, 'r+');
    try {
      await copyRange(fh, from, scan.goodEnd, w, from);
    } finally {
      await w.close();
    }
  }

  /** Starts a new segment at nextOffset. Runs inside the writer loop only. */
  private async roll(): Promise<void> {
    const { cfg } = this;
    const next = new Segment(cfg.dir, this.nextOffset, 0);
    const fh = await open(next.path, 'a+');
    try {
      if ((await fh.stat()).size !== 0) throw new Error(`segment ${next.path} already exists and is not empty`);
      if (cfg.fsync !== 'never') await fsyncDir(cfg.dir);
    } catch (err) {
      await fh.close();
      throw err;
    }
    const old = this.active!;
    const sealed = this.segments[this.segments.length - 1]!;
    // Nothing written to the sealed segment may be left for the interval timer: it only sees `active`.
    if (this.dirty && cfg.fsync !== 'never') {
      try {
        await old.datasync();
      } catch (err) {
        await fh.close();
        this.fail('state', 'fsync failed', err);
        throw err;
      }
      this.dirty = false;
    }
    this.active = fh;
    this.segments.push(next);
    next.nextOffset = this.nextOffset;
    this.visibleEnd = 0;
    this.syncedEnd = 0;
    this.syncedOffset = this.nextOffset;
    await old.close().catch((err: unknown) => cfg.onBackgroundError(err));
    await sealed.writeIndexFile().catch((err: unknown) => cfg.onBackgroundError(err));
  }

  /** Deletes whole oldest segments while the partition holds more than retentionBytes. */
  private async enforceRetention(): Promise<void> {
    while (this.segments.length > 1 && this.totalBytes > this.cfg.retentionBytes) {
      // Deleting the oldest segment removes every offset below the next segment's base.
      const keepFrom = this.cfg.protectedOffset?.();
      const nextBase = this.segments[1]?.base ?? 0;
      if (keepFrom !== undefined && nextBase > keepFrom) {
        this.cfg.onRetentionHeld?.();
        return;
      }
      const oldest = this.segments.shift()!;
      this.totalBytes -= oldest.size;
      // Readers that already opened it keep reading (POSIX unlink semantics); new ones skip ahead.
      for (const path of [oldest.path, oldest.indexPath]) {
        await unlink(path).catch((err: unknown) => {
          if (!isErrno(err, 'ENOENT')) this.cfg.onBackgroundError(err);
        });
      }
    }
  }

  /**
   * Reads up to maxMessages from `from` (or the low offset, if `from` was deleted), stopping before a
   * message that would take the value bytes past maxBytes (but always returning at least one message
   * when `atLeastOne`). Steps over damaged records (quarantined and reported once) to the next good
   * one, and over a damaged tail of a sealed segment to the next segment: damage costs the damaged
   * records only, and a reader never stalls or throws on it.
   */
  async read(from: number, maxMessages: number, maxBytes: number, atLeastOne: boolean): Promise<ReadResult> {
    await this.refresh();
    const segments = this.segments.slice();
    const lastEnd = this.visibleEnd;
    const high = this.visibleOffset;
    const messages: StoredMessage[] = [];
    let offset = Math.max(from, segments[0]?.base ?? from);
    if (offset >= high || maxMessages <= 0) return { messages, next: offset, byteLimited: false };

    let i = segments.length - 1;
    while (i > 0 && segments[i]!.base > offset) i--;
    let bytes = 0;
    let byteLimited = false;
    let done = false;
    for (; i < segments.length && !done; i++) {
      const seg = segments[i]!;
      const isLast = i === segments.length - 1;
      offset = Math.max(offset, seg.base);
      let fh: FileHandle;
      try {
        fh = await open(seg.path, 'r');
      } catch (err) {
        // Retention removed it since we took the snapshot: continue with the next segment.
        if (isErrno(err, 'ENOENT')) continue;
        throw err;
      }
      try {
        const end = isLast ? lastEnd : this.cfg.readOnly ? (await fh.stat()).size : seg.size;
        if (!isLast) await seg.loadIndexFile(end);
        const damages: DamagedRegion[] = [];
        let afterDamage = false;
        const resync = (trustedStart: boolean) => ({
          trustedStart,
          onDamage: (d: DamagedRegion) => {
            damages.push(d);
            afterDamage = true;
          },
        });
        const visit = (r: RecordView): Visit => {
          seg.noteRecord(r.offset, r.position, afterDamage);
          afterDamage = false;
          if (r.offset < offset) return Visit.Continue;
          const valueBytes = bodyValueLength(r.buf, r.bodyStart, r.bodyLength);
          if (bytes + valueBytes > maxBytes && (messages.length > 0 || !atLeastOne)) {
            byteLimited = true;
            return Visit.StopBefore;
          }
          messages.push(decodeBody(r.buf, r.bodyStart, r.bodyLength, this.cfg.topic, this.cfg.partition));
          bytes += valueBytes;
          return messages.length >= maxMessages ? Visit.StopAfter : Visit.Continue;
        };
        let start = seg.lookup(offset);
        // An index position is a hint, not a verified boundary: no resync from there.
        let scan = await scanRecords(fh, start.position, end, start.offset, visit, { resync: resync(start.position === 0) });
        if ((scan.stop === 'corrupt' || scan.stop === 'torn') && scan.goodEnd === start.position && start.position > 0) {
          // The index pointed somewhere wrong (mid-record reads as torn or corrupt), or at a damaged
          // record: forget it and walk from the segment start, which is a record boundary.
          seg.resetIndex();
          damages.length = 0;
          start = { position: 0, offset: seg.base };
          scan = await scanRecords(fh, 0, end, seg.base, visit, { resync: resync(true) });
        }
        if (scan.stop === 'visitor') {
          done = true;
        } else if (scan.stop !== null && !isLast) {
          // Nothing good after the damage in this sealed segment: what it held runs up to the next
          // segment's base.
          damages.push({ position: scan.goodEnd, end, firstOffset: scan.nextOffset, nextOffset: segments[i + 1]!.base });
        }
        for (const d of damages) await this.reportDamage(fh, seg, d);
        offset = Math.max(offset, scan.nextOffset);
      } finally {
        await fh.close();
      }
    }
    const lastMessage = messages[messages.length - 1];
    return { messages, next: lastMessage === undefined ? Math.min(offset, high) : lastMessage.offset + 1, byteLimited };
  }

  /**
   * Copies a damaged stretch to quarantine/ (unless read-only) and reports it, once per stretch per
   * process. A failed copy is reported as a background error and never fails the read: the
   * records after the damage must still be delivered.
   */
  private async reportDamage(fh: FileHandle, seg: Segment, d: DamagedRegion): Promise<void> {
    if (seg.damageReported.has(d.position)) return;
    seg.damageReported.add(d.position);
    const { cfg } = this;
    let quarantine: string | null = null;
    if (!cfg.readOnly) {
      const dir = join(cfg.dir, QUARANTINE_DIR);
      const lost = d.nextOffset > d.firstOffset ? `${d.firstOffset}-${d.nextOffset - 1}` : 'none';
      const path = join(dir, `${basename(seg.path)}.at-${d.position}.offsets-${lost}.bad`);
      try {
        await mkdir(dir, { recursive: true });
        await writeFileAtomic(path, (out) => copyRange(fh, d.position, d.end, out), { durable: cfg.fsync !== 'never' });
        quarantine = path;
      } catch (err) {
        cfg.onBackgroundError(err);
      }
    }
    cfg.onCorruptRecord({
      topic: cfg.topic,
      partition: cfg.partition,
      segment: seg.path,
      position: d.position,
      bytes: d.end - d.position,
      firstOffset: d.firstOffset,
      nextOffset: d.nextOffset,
      records: Math.max(1, d.nextOffset - d.firstOffset),
      quarantine,
    });
  }

  /** Stops taking appends, lets queued ones finish, fsyncs (unless 'never') and closes the file. */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    this.closed = true;
    if (this.recoveryTimer !== null) clearTimeout(this.recoveryTimer);
    this.recoveryTimer = null;
    while (this.pumping !== null) await this.pumping;
    if (this.refreshing !== null) await this.refreshing.catch(() => undefined);
    const fh = this.active;
    this.active = null;
    if (fh === null) return;
    try {
      if (this.dirty && this.cfg.fsync !== 'never' && this.failure === null) await fh.datasync();
    } finally {
      await fh.close();
    }
  }
}

/**
 * Copies bytes [from, to) of `src` to `out` in bounded chunks (a damaged stretch can be large), at
 * `outPosition` onward, or at out's current position when omitted.
 */
async function copyRange(src: FileHandle, from: number, to: number, out: FileHandle, outPosition?: number): Promise<void> {
  const buf = Buffer.allocUnsafe(Math.min(RECOVERY_CHUNK_BYTES, Math.max(1, to - from)));
  for (let pos = from; pos < to; ) {
    const { bytesRead } = await src.read(buf, 0, Math.min(buf.length, to - pos), pos);
    if (bytesRead === 0) throw new Error(`${src.fd}: file ended at ${pos}, expected ${to}`);
    await writeFully(out, buf.subarray(0, bytesRead), outPosition === undefined ? undefined : outPosition + pos - from);
    pos += bytesRead;
  }
}

/** Writes and (if durable) fsyncs a scratch file, then removes it: does the disk take data now? */
async function probeDisk(path: string, durable: boolean): Promise<void> {
  const fh = await open(path, 'w');
  try {
    await writeFully(fh, Buffer.alloc(PROBE_BYTES));
    if (durable) await fh.datasync();
  } finally {
    await fh.close().catch(() => undefined);
    await unlink(path).catch(() => undefined);
  }
}

async function writeFully(fh: FileHandle, buf: Buffer, position?: number): Promise<void> {
  let written = 0;
  while (written < buf.length) {
    const { bytesWritten } = await fh.write(buf, written, buf.length - written, position === undefined ? null : position + written);
    if (bytesWritten === 0) throw new Error('write made no progress');
    written += bytesWritten;
  }
}
