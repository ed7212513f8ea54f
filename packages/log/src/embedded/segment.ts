/**
 * One segment file and its sparse offset → position index.
 *
 * The index is an optimisation only: every position it yields is re-verified by the scanner (the
 * record there must carry the expected offset), and a wrong index is dropped and rebuilt by
 * scanning. So the `.index` file of a sealed segment is written without fsync and never recovered.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Bytes between index entries: a seek then scans at most this much past the entry. */
export const INDEX_INTERVAL_BYTES = 32 * 1024;

const NAME_DIGITS = 20;
const SEGMENT_RE = /^(\d{20})\.log$/;

export function segmentFileName(base: number): string {
  return `${String(base).padStart(NAME_DIGITS, '0')}.log`;
}

/** Base offset encoded in a segment file name, or null for any other file. */
export function parseSegmentFileName(name: string): number | null {
  const m = SEGMENT_RE.exec(name);
  if (m === null) return null;
  const base = Number(m[1]);
  return Number.isSafeInteger(base) ? base : null;
}

export class Segment {
  readonly path: string;
  readonly indexPath: string;
  /**
   * Bytes of this segment known to hold good records. For the active segment of the writer this is
   * the append position; for a sealed segment, its file size.
   */
  size: number;
  /** Offset after the last record known, meaningful for the last segment of a partition. */
  nextOffset: number;
  /**
   * Damaged stretches already reported (by position), so each is quarantined and counted once per
   * process however many reads step over it.
   */
  readonly damageReported = new Set<number>();

  private readonly offsets: number[] = [];
  private readonly positions: number[] = [];
  private indexFileTried = false;

  constructor(
    dir: string,
    readonly base: number,
    size: number,
  ) {
    const name = segmentFileName(base);
    this.path = join(dir, name);
    this.indexPath = join(dir, name.replace(/\.log$/, '.index'));
    this.size = size;
    this.nextOffset = base;
  }

  /**
   * Remembers a record position if it is far enough past the last entry, or with `force` (the first
   * record after a damaged stretch, so later reads start past the damage instead of resyncing over
   * it again). Call in offset order.
   */
  noteRecord(offset: number, position: number, force = false): void {
    const n = this.positions.length;
    const lastPos = n === 0 ? 0 : this.positions[n - 1]!;
    const lastOffset = n === 0 ? this.base : this.offsets[n - 1]!;
    if (offset > lastOffset && position > lastPos && (force || position >= lastPos + INDEX_INTERVAL_BYTES)) {
      this.offsets.push(offset);
      this.positions.push(position);
    }
  }

  /** Index entries not yet pushed, accumulated while encoding a write that may still fail. */
  pendingEntries(): IndexDraft {
    const n = this.positions.length;
    return new IndexDraft(n === 0 ? 0 : this.positions[n - 1]!, n === 0 ? this.base : this.offsets[n - 1]!);
  }

  commitEntries(draft: IndexDraft): void {
    for (let i = 0; i < draft.offsets.length; i++) this.noteRecord(draft.offsets[i]!, draft.positions[i]!);
  }

  /** The closest known record at or before `offset`: where a scan for it can start. */
  lookup(offset: number): { position: number; offset: number } {
    let lo = 0;
    let hi = this.offsets.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.offsets[mid]! <= offset) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found < 0 ? { position: 0, offset: this.base } : { position: this.positions[found]!, offset: this.offsets[found]! };
  }

  /** Forgets index entries at or past `position` (those bytes were cut). */
  truncateIndex(position: number): void {
    let n = this.positions.length;
    while (n > 0 && this.positions[n - 1]! >= position) n--;
    this.positions.length = n;
    this.offsets.length = n;
  }

  resetIndex(): void {
    this.offsets.length = 0;
    this.positions.length = 0;
  }

  /** Loads `<base>.index` once, if present and plausible, and nothing is indexed in memory yet. */
  async loadIndexFile(fileSize: number): Promise<void> {
    if (this.indexFileTried || this.offsets.length > 0) return;
    this.indexFileTried = true;
    let data: Buffer;
    try {
      data = await readFile(this.indexPath);
    } catch {
      return;
    }
    const offsets: number[] = [];
    const positions: number[] = [];
    let lastRel = 0;
    let lastPos = 0;
    for (let i = 0; i + 8 <= data.length; i += 8) {
      const rel = data.readUInt32BE(i);
      const pos = data.readUInt32BE(i + 4);
      // A torn or foreign index: keep the plausible prefix (each entry is re-verified on use anyway).
      if (rel <= lastRel || pos <= lastPos || pos >= fileSize) break;
      offsets.push(this.base + rel);
      positions.push(pos);
      lastRel = rel;
      lastPos = pos;
    }
    if (this.offsets.length === 0) {
      this.offsets.push(...offsets);
      this.positions.push(...positions);
    }
  }

  /** Persists the index of a sealed segment so a later process (or the operator CLI) can seek at once. */
  async writeIndexFile(): Promise<void> {
    const buf = Buffer.allocUnsafe(this.offsets.length * 8);
    for (let i = 0; i < this.offsets.length; i++) {
      buf.writeUInt32BE(this.offsets[i]! - this.base, i * 8);
      buf.writeUInt32BE(this.positions[i]!, i * 8 + 4);
    }
    await writeFile(this.indexPath, buf);
    this.indexFileTried = true;
  }
}

/** Index entries for records being written, applied only once the write succeeded. */
export class IndexDraft {
  readonly offsets: number[] = [];
  readonly positions: number[] = [];

  constructor(
    private lastPos: number,
    private lastOffset: number,
  ) {}

  note(offset: number, position: number): void {
    if (offset > this.lastOffset && position >= this.lastPos + INDEX_INTERVAL_BYTES) {
      this.offsets.push(offset);
      this.positions.push(position);
      this.lastPos = position;
      this.lastOffset = offset;
    }
  }
}
