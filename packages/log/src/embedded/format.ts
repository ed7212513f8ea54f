/**
 * On-disk record format of the embedded log, and the one scanner every reader uses (recovery,
 * read-only refresh, consumer and admin reads), so there is exactly one definition of "a good record".
 *
 * A segment is a plain concatenation of records, big-endian:
 *
 *   u32  bodyLength        bytes after the CRC field
 *   u32  crc32             zlib CRC-32 (IEEE) of the body
 *   body:
 *     u8   version         RECORD_VERSION; room for attributes (compression, …) later
 *     u64  offset          absolute offset; must equal the previous record's + 1
 *     i64  timestamp       epoch ms
 *     u16  keyLength, key (UTF-8)
 *     u16  headerCount, then per header: u16 nameLength, name, u16 valueLength, value (UTF-8)
 *     value                the rest of the body
 *
 * Storing the absolute offset in every record lets recovery and reads detect a record that is intact
 * but in the wrong place (a stale sparse index, a segment renamed by hand) instead of mis-numbering it.
 */
import { crc32 } from 'node:zlib';
import type { FileHandle } from 'node:fs/promises';
import type { StoredMessage } from '../types.ts';

export const RECORD_VERSION = 1;
/** u32 length + u32 crc. */
export const RECORD_HEADER_BYTES = 8;
/** version + offset + timestamp + keyLength + headerCount. */
export const MIN_BODY_BYTES = 1 + 8 + 8 + 2 + 2;
/** Bytes a record costs beyond its key, header strings and value. */
export const RECORD_OVERHEAD_BYTES = RECORD_HEADER_BYTES + MIN_BODY_BYTES;
/**
 * Hard ceiling on one record. Recovery trusts a length field only up to this, so a corrupted length
 * can never make a scan allocate gigabytes.
 */
export const MAX_RECORD_BYTES = 64 * 1024 * 1024;
const MAX_U16 = 0xffff;
const TWO_32 = 2 ** 32;

/** A message validated and measured once at send time, so the append path only copies bytes. */
export interface PreparedMessage {
  keyBytes: Buffer;
  headers: Array<[name: Buffer, value: Buffer]>;
  value: Buffer;
  timestamp: number;
  /** Encoded record size in bytes. */
  size: number;
}

export function prepareMessage(
  message: { key: string; value: Buffer; headers?: Record<string, string>; timestamp?: number },
  maxRecordBytes: number,
  now: number,
): PreparedMessage {
  if (typeof message.key !== 'string') throw new TypeError('message.key must be a string');
  if (!Buffer.isBuffer(message.value)) throw new TypeError('message.value must be a Buffer');
  const keyBytes = Buffer.from(message.key, 'utf8');
  if (keyBytes.length > MAX_U16) throw new RangeError(`message key is ${keyBytes.length} bytes; the limit is ${MAX_U16}`);
  const timestamp = message.timestamp ?? now;
  if (!Number.isSafeInteger(timestamp)) throw new RangeError(`message timestamp must be an integer epoch ms, got ${timestamp}`);
  let size = RECORD_OVERHEAD_BYTES + keyBytes.length + message.value.length;
  const headers: Array<[Buffer, Buffer]> = [];
  if (message.headers !== undefined) {
    for (const [name, value] of Object.entries(message.headers)) {
      if (typeof value !== 'string') throw new TypeError(`header ${name} must be a string`);
      const n = Buffer.from(name, 'utf8');
      const v = Buffer.from(value, 'utf8');
      if (n.length > MAX_U16 || v.length > MAX_U16) throw new RangeError(`header ${name} exceeds ${MAX_U16} bytes`);
      headers.push([n, v]);
      size += 4 + n.length + v.length;
    }
    if (headers.length > MAX_U16) throw new RangeError(`a message may carry at most ${MAX_U16} headers`);
  }
  if (size > maxRecordBytes) throw new RangeError(`message encodes to ${size} bytes; the limit is ${maxRecordBytes}`);
  return { keyBytes, headers, value: message.value, timestamp, size };
}

/** Writes one record at `pos` and returns the position after it. `buf` must have `m.size` bytes free. */
export function encodeRecord(buf: Buffer, pos: number, m: PreparedMessage, offset: number): number {
  const bodyStart = pos + RECORD_HEADER_BYTES;
  let p = bodyStart;
  buf[p] = RECORD_VERSION;
  p = writeU64(buf, p + 1, offset);
  p = writeI64(buf, p, m.timestamp);
  p = buf.writeUInt16BE(m.keyBytes.length, p);
  p += m.keyBytes.copy(buf, p);
  p = buf.writeUInt16BE(m.headers.length, p);
  for (const [n, v] of m.headers) {
    p = buf.writeUInt16BE(n.length, p);
    p += n.copy(buf, p);
    p = buf.writeUInt16BE(v.length, p);
    p += v.copy(buf, p);
  }
  p += m.value.copy(buf, p);
  buf.writeUInt32BE(p - bodyStart, pos);
  buf.writeUInt32BE(crc32(buf.subarray(bodyStart, p)), pos + 4);
  return p;
}

/** Decodes the body at buf[start, start+length) (already CRC-checked by the scanner). */
export function decodeBody(
  buf: Buffer,
  start: number,
  length: number,
  topic: string,
  partition: number,
): StoredMessage {
  const end = start + length;
  const offset = readU64(buf, start + 1);
  const timestamp = readI64(buf, start + 9);
  let p = start + 17;
  const keyLength = buf.readUInt16BE(p);
  p += 2;
  const key = buf.toString('utf8', p, p + keyLength);
  p += keyLength;
  const headerCount = buf.readUInt16BE(p);
  p += 2;
  const headers: Record<string, string> = {};
  for (let i = 0; i < headerCount; i++) {
    const nl = buf.readUInt16BE(p);
    const name = buf.toString('utf8', p + 2, p + 2 + nl);
    p += 2 + nl;
    const vl = buf.readUInt16BE(p);
    headers[name] = buf.toString('utf8', p + 2, p + 2 + vl);
    p += 2 + vl;
  }
  if (p > end) throw new RangeError('record fields overrun the record body');
  // A copy, so a consumer holding one value does not pin the whole read chunk in memory.
  const value = Buffer.from(buf.subarray(p, end));
  return { topic, partition, offset, key, value, headers, timestamp };
}

/** Value length of a body without decoding it (for byte budgets before deciding to decode). */
export function bodyValueLength(buf: Buffer, start: number, length: number): number {
  let p = start + 17;
  p += 2 + buf.readUInt16BE(p);
  const headerCount = buf.readUInt16BE(p);
  p += 2;
  for (let i = 0; i < headerCount; i++) {
    p += 2 + buf.readUInt16BE(p);
    p += 2 + buf.readUInt16BE(p);
  }
  return start + length - p;
}

function writeU64(buf: Buffer, pos: number, v: number): number {
  buf.writeUInt32BE(Math.floor(v / TWO_32), pos);
  buf.writeUInt32BE(v >>> 0, pos + 4);
  return pos + 8;
}

function readU64(buf: Buffer, pos: number): number {
  return buf.readUInt32BE(pos) * TWO_32 + buf.readUInt32BE(pos + 4);
}

function writeI64(buf: Buffer, pos: number, v: number): number {
  const hi = Math.floor(v / TWO_32);
  buf.writeInt32BE(hi, pos);
  buf.writeUInt32BE(v - hi * TWO_32, pos + 4);
  return pos + 8;
}

function readI64(buf: Buffer, pos: number): number {
  return buf.readInt32BE(pos) * TWO_32 + buf.readUInt32BE(pos + 4);
}

/**
 * What a scan visitor wants after seeing a record: go on, take this one and stop, or stop without
 * taking it (the scan result then points at it). A plain object rather than an enum so it survives
 * per-file transpilation (tsx, vitest) unchanged.
 */
export const Visit = { Continue: 0, StopAfter: 1, StopBefore: 2 } as const;
export type Visit = (typeof Visit)[keyof typeof Visit];

export interface RecordView {
  buf: Buffer;
  bodyStart: number;
  bodyLength: number;
  offset: number;
  /** File position of the record's first byte. */
  position: number;
}

export interface ScanResult {
  /** File position just past the last record taken (or where the scan stopped). */
  goodEnd: number;
  /** Offset of the record at goodEnd, i.e. the next one to expect. */
  nextOffset: number;
  /**
   * Why the scan ended before `end`: 'torn' when the last record runs past `end` (an interrupted
   * write), 'corrupt' when a record is complete but fails length/CRC/version/offset checks,
   * 'visitor' when the visitor asked, null when it reached `end` exactly.
   */
  stop: 'torn' | 'corrupt' | 'visitor' | null;
}

export const SCAN_CHUNK_BYTES = 256 * 1024;

/**
 * Walks records in fh from `start` (a record boundary whose record carries `firstOffset`) up to
 * `end`, verifying each one, and calls `visit` for each good record. Reads in large chunks so a scan
 * costs one syscall per chunk, not per record.
 */
export async function scanRecords(
  fh: FileHandle,
  start: number,
  end: number,
  firstOffset: number,
  visit: (r: RecordView) => Visit,
  chunkBytes = SCAN_CHUNK_BYTES,
): Promise<ScanResult> {
  let buf = Buffer.allocUnsafe(Math.max(1, Math.min(chunkBytes, end - start)));
  let bufStart = start;
  let bufLength = 0;
  let pos = start;
  let expected = firstOffset;

  // Makes buf hold file bytes [pos, pos+n); false when the file (or `end`) has fewer.
  const ensure = async (n: number): Promise<boolean> => {
    if (pos + n > end) return false;
    if (pos + n <= bufStart + bufLength) return true;
    const keep = bufStart + bufLength - pos;
    const want = Math.min(Math.max(n, chunkBytes), end - pos);
    if (buf.length < want) {
      const bigger = Buffer.allocUnsafe(want);
      buf.copy(bigger, 0, pos - bufStart, pos - bufStart + keep);
      buf = bigger;
    } else if (keep > 0) {
      buf.copy(buf, 0, pos - bufStart, pos - bufStart + keep);
    }
    bufStart = pos;
    bufLength = keep;
    while (bufLength < want) {
      const { bytesRead } = await fh.read(buf, bufLength, want - bufLength, bufStart + bufLength);
      // The file is shorter than `end` said (truncated under us): whatever is missing is torn.
      if (bytesRead === 0) return bufLength >= n;
      bufLength += bytesRead;
    }
    return true;
  };

  for (;;) {
    if (pos === end) return { goodEnd: pos, nextOffset: expected, stop: null };
    if (!(await ensure(RECORD_HEADER_BYTES))) return { goodEnd: pos, nextOffset: expected, stop: 'torn' };
    const bodyLength = buf.readUInt32BE(pos - bufStart);
    if (bodyLength < MIN_BODY_BYTES || bodyLength + RECORD_HEADER_BYTES > MAX_RECORD_BYTES) {
      return { goodEnd: pos, nextOffset: expected, stop: 'corrupt' };
    }
    if (!(await ensure(RECORD_HEADER_BYTES + bodyLength))) return { goodEnd: pos, nextOffset: expected, stop: 'torn' };
    const at = pos - bufStart;
    const bodyStart = at + RECORD_HEADER_BYTES;
    const crc = buf.readUInt32BE(at + 4);
    if (crc32(buf.subarray(bodyStart, bodyStart + bodyLength)) !== crc || buf[bodyStart] !== RECORD_VERSION) {
      return { goodEnd: pos, nextOffset: expected, stop: 'corrupt' };
    }
    const offset = readU64(buf, bodyStart + 1);
    if (offset !== expected) return { goodEnd: pos, nextOffset: expected, stop: 'corrupt' };
    const verdict = visit({ buf, bodyStart, bodyLength, offset, position: pos });
    if (verdict === Visit.StopBefore) return { goodEnd: pos, nextOffset: expected, stop: 'visitor' };
    pos += RECORD_HEADER_BYTES + bodyLength;
    expected = offset + 1;
    if (verdict === Visit.StopAfter) return { goodEnd: pos, nextOffset: expected, stop: 'visitor' };
  }
}
