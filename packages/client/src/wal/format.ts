/**
 * On-disk record format of the client WAL. A segment file is a plain concatenation of records,
 * big-endian:
 *
 *   u32  bodyLength   bytes after the CRC field
 *   u32  crc32        zlib CRC-32 (IEEE) of the body
 *   body:
 *     u8   version      RECORD_VERSION
 *     u64  offset       absolute offset, strictly increasing through the log
 *     u64  appendedAt   epoch ms the record was taken by record() (for oldestUnackedAgeMs)
 *     payload           the entry as UTF-8 JSON, exactly the bytes sent to the edge
 *
 * Offsets are strictly increasing but may skip: a record lost to corruption is cut out at recovery
 * and its number is never reused. Storing the offset in every record is what lets the scanner
 * re-synchronise after a damaged region (a flipped length field) instead of losing the rest of the
 * segment: a candidate position is only believed if its CRC matches *and* its offset fits.
 */
import { crc32 } from 'node:zlib';

export const RECORD_VERSION = 1;
export const RECORD_HEADER_BYTES = 8;
/** version + offset + appendedAt. */
export const BODY_FIXED_BYTES = 1 + 8 + 8;
export const RECORD_OVERHEAD_BYTES = RECORD_HEADER_BYTES + BODY_FIXED_BYTES;
/** A length field is only trusted up to this, so a corrupt one never makes a scan allocate much. */
export const MAX_RECORD_BYTES = 16 * 1024 * 1024;
const TWO_32 = 2 ** 32;

export function recordSize(payloadBytes: number): number {
  return RECORD_OVERHEAD_BYTES + payloadBytes;
}

/** Writes one record at `pos`; `buf` must have recordSize(payload.length) bytes free there. */
export function encodeRecord(buf: Buffer, pos: number, offset: number, appendedAt: number, payload: Buffer): number {
  const bodyStart = pos + RECORD_HEADER_BYTES;
  buf[bodyStart] = RECORD_VERSION;
  writeU64(buf, bodyStart + 1, offset);
  writeU64(buf, bodyStart + 9, Math.max(0, Math.floor(appendedAt)));
  payload.copy(buf, bodyStart + BODY_FIXED_BYTES);
  const end = bodyStart + BODY_FIXED_BYTES + payload.length;
  buf.writeUInt32BE(end - bodyStart, pos);
  buf.writeUInt32BE(crc32(buf.subarray(bodyStart, end)), pos + 4);
  return end;
}

export interface RecordAt {
  /** Position of the record's first byte in the buffer. */
  pos: number;
  /** Encoded size, header included. */
  size: number;
  offset: number;
  appendedAt: number;
  payloadStart: number;
  payloadEnd: number;
}

export type Check = { kind: 'ok'; record: RecordAt } | { kind: 'torn' } | { kind: 'corrupt' };

/**
 * Verifies the record at buf[pos...end): 'torn' when it runs past `end` (an interrupted write),
 * 'corrupt' when it is complete but fails length, CRC, version or offset bounds.
 */
export function checkRecord(buf: Buffer, pos: number, end: number, minOffset: number, maxOffset: number): Check {
  if (pos + RECORD_HEADER_BYTES > end) return { kind: 'torn' };
  const bodyLength = buf.readUInt32BE(pos);
  if (bodyLength < BODY_FIXED_BYTES || bodyLength + RECORD_HEADER_BYTES > MAX_RECORD_BYTES) return { kind: 'corrupt' };
  const bodyStart = pos + RECORD_HEADER_BYTES;
  const bodyEnd = bodyStart + bodyLength;
  if (bodyEnd > end) return { kind: 'torn' };
  if (buf[bodyStart] !== RECORD_VERSION) return { kind: 'corrupt' };
  const offset = readU64(buf, bodyStart + 1);
  if (offset < minOffset || offset > maxOffset) return { kind: 'corrupt' };
  if (crc32(buf.subarray(bodyStart, bodyEnd)) !== buf.readUInt32BE(pos + 4)) return { kind: 'corrupt' };
  return {
    kind: 'ok',
    record: {
      pos,
      size: RECORD_HEADER_BYTES + bodyLength,
      offset,
      appendedAt: readU64(buf, bodyStart + 9),
      payloadStart: bodyStart + BODY_FIXED_BYTES,
      payloadEnd: bodyEnd,
    },
  };
}

export interface SegmentScan {
  /** Every good record, in order. */
  records: RecordAt[];
  /** Byte position after the last good record. */
  goodEnd: number;
  /**
   * Damaged regions between good records (the segment needs rewriting to drop them), with the
   * offset the scan expected there and the offset of the good record it resumed at.
   */
  gaps: Array<{ from: number; to: number; expectedOffset: number; resumedOffset: number }>;
  /** A damaged or torn region after the last good record, up to `end`. */
  badTail: { from: number; torn: boolean; expectedOffset: number } | null;
}

/**
 * Scans a whole segment held in memory. On a bad record it looks for the next position holding a
 * record that verifies (CRC, version, an offset above the last good one and within bounds) and
 * carries on from there, so one flipped byte costs one record, not the rest of the segment.
 */
export function scanSegment(buf: Buffer, end: number, minOffset: number, maxOffset: number): SegmentScan {
  const records: RecordAt[] = [];
  const gaps: SegmentScan['gaps'] = [];
  let pos = 0;
  let expected = minOffset;
  while (pos < end) {
    const c = checkRecord(buf, pos, end, expected, maxOffset);
    if (c.kind === 'ok') {
      records.push(c.record);
      expected = c.record.offset + 1;
      pos += c.record.size;
      continue;
    }
    const next = resync(buf, pos + 1, end, expected, maxOffset);
    if (next === null) return { records, goodEnd: pos, gaps, badTail: { from: pos, torn: c.kind === 'torn', expectedOffset: expected } };
    gaps.push({ from: pos, to: next.pos, expectedOffset: expected, resumedOffset: next.offset });
    pos = next.pos;
  }
  return { records, goodEnd: pos, gaps, badTail: null };
}

function resync(buf: Buffer, from: number, end: number, minOffset: number, maxOffset: number): RecordAt | null {
  const last = end - RECORD_OVERHEAD_BYTES;
  for (let q = from; q <= last; q++) {
    // Cheap filters first; the CRC runs only where the version byte and length already fit.
    if (buf[q + RECORD_HEADER_BYTES] !== RECORD_VERSION) continue;
    const c = checkRecord(buf, q, end, minOffset, maxOffset);
    if (c.kind === 'ok') return c.record;
  }
  return null;
}

function writeU64(buf: Buffer, pos: number, v: number): void {
  buf.writeUInt32BE(Math.floor(v / TWO_32), pos);
  buf.writeUInt32BE(v >>> 0, pos + 4);
}

function readU64(buf: Buffer, pos: number): number {
  return buf.readUInt32BE(pos) * TWO_32 + buf.readUInt32BE(pos + 4);
}

const SEGMENT_RE = /^(\d{20})\.wal$/;

export function segmentFileName(base: number): string {
  return `${String(base).padStart(20, '0')}.wal`;
}

export function parseSegmentFileName(name: string): number | null {
  const m = SEGMENT_RE.exec(name);
  if (!m) return null;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) ? n : null;
}

/**
 * Checkpoint file: 16 bytes — magic "IWC1", crc32 of the last 8 bytes, u64 (ackedOffset + 1).
 * Stored as "+1" so "nothing acked yet" (-1) is representable unsigned.
 */
const CHECKPOINT_MAGIC = 0x49574331;
export const CHECKPOINT_BYTES = 16;

export function encodeCheckpoint(ackedOffset: number): Buffer {
  const b = Buffer.alloc(CHECKPOINT_BYTES);
  b.writeUInt32BE(CHECKPOINT_MAGIC, 0);
  writeU64(b, 8, ackedOffset + 1);
  b.writeUInt32BE(crc32(b.subarray(8, 16)), 4);
  return b;
}

/** The acked offset, or null when the bytes are not a valid checkpoint. */
export function decodeCheckpoint(b: Buffer): number | null {
  if (b.length !== CHECKPOINT_BYTES || b.readUInt32BE(0) !== CHECKPOINT_MAGIC) return null;
  if (crc32(b.subarray(8, 16)) !== b.readUInt32BE(4)) return null;
  return readU64(b, 8) - 1;
}
