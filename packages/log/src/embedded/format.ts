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
  headers: ReadonlyArray<readonly [name: Buffer, value: Buffer]>;
  value: Buffer;
  timestamp: number;
  /** Encoded record size in bytes. */
  size: number;
}

interface EncodedHeaders {
  pairs: ReadonlyArray<readonly [Buffer, Buffer]>;
  /** Bytes they take in a record, length prefixes included. */
  bytes: number;
}

const NO_HEADERS: EncodedHeaders = { pairs: [], bytes: 0 };

// The messages of one append usually share one key and one headers object (a request's tenant and
// trace context): they are encoded once, not once per message. The encodings are only ever copied
// from, so sharing them is safe; one entry each, so nothing accumulates. The price: a headers
// object must not be changed after it was sent (the sink writer makes one per request).
let lastKey: string | undefined;
let lastKeyBytes: Buffer = Buffer.alloc(0);
let lastHeaders: Readonly<Record<string, string>> | undefined;
let lastEncoded: EncodedHeaders = NO_HEADERS;

function encodedKey(key: string): Buffer {
  if (key !== lastKey) {
    lastKeyBytes = Buffer.from(key, 'utf8');
    lastKey = key;
  }
  return lastKeyBytes;
}

function encodedHeaders(headers: Readonly<Record<string, string>>): EncodedHeaders {
  if (headers === lastHeaders) return lastEncoded;
  const pairs: Array<[Buffer, Buffer]> = [];
  let bytes = 0;
  for (const [name, value] of Object.entries(headers)) {
    if (typeof value !== 'string') throw new TypeError(`header ${name} must be a string`);
    const n = Buffer.from(name, 'utf8');
    const v = Buffer.from(value, 'utf8');
    if (n.length > MAX_U16 || v.length > MAX_U16) throw new RangeError(`header ${name} exceeds ${MAX_U16} bytes`);
    pairs.push([n, v]);
    bytes += 4 + n.length + v.length;
  }
  if (pairs.length > MAX_U16) throw new RangeError(`a message may carry at most ${MAX_U16} headers`);
  lastHeaders = headers;
  lastEncoded = { pairs, bytes };
  return lastEncoded;
}

export function prepareMessage(
  message: { key: string; value: Buffer; headers?: Record<string, string>; timestamp?: number },
  maxRecordBytes: number,
  now: number,
): PreparedMessage {
  if (typeof message.key !== 'string') throw new TypeError('message.key must be a string');
  if (!Buffer.isBuffer(message.value)) throw new TypeError('message.value must be a Buffer');
  const keyBytes = encodedKey(message.key);
  if (keyBytes.length > MAX_U16) throw new RangeError(`message key is ${keyBytes.length} bytes; the limit is ${MAX_U16}`);
  const timestamp = message.timestamp ?? now;
  if (!Number.isSafeInteger(timestamp)) throw new RangeError(`message timestamp must be an integer epoch ms, got ${timestamp}`);
  let size = RECORD_OVERHEAD_BYTES + keyBytes.length + message.value.length;
  const headers = message.headers === undefined ? NO_HEADERS : encodedHeaders(message.headers);
  size += headers.bytes;
  if (size > maxRecordBytes) throw new RangeError(`message encodes to ${size} bytes; the limit is ${maxRecordBytes}`);
  return { keyBytes, headers: headers.pairs, value: message.value, timestamp, size };
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

/**
 * The key and headers of the last record decoded, as their encoded bytes and as decoded. The records
 * of one append share them (a request's tenant and trace context), so a run of records decodes them
 * once: a byte compare instead of a string and an object per field. One entry, so nothing
 * accumulates; the shared headers object is frozen, since every message of the run holds it.
 */
let lastMeta: Buffer = Buffer.alloc(0);
let lastMetaKey = '';
let lastMetaHeaders: Readonly<Record<string, string>> = Object.freeze({});

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
  const metaStart = start + 17;
  const p = valueStart(buf, start);
  if (p > end) throw new RangeError('record fields overrun the record body');
  if (buf.compare(lastMeta, 0, lastMeta.length, metaStart, p) !== 0) decodeMeta(buf, metaStart, p);
  // A copy, so a consumer holding one value does not pin the whole read chunk in memory.
  const value = Buffer.from(buf.subarray(p, end));
  return { topic, partition, offset, key: lastMetaKey, value, headers: lastMetaHeaders as Record<string, string>, timestamp };
}

/** Decodes key and headers at buf[start, end) into the one-entry cache above. */
function decodeMeta(buf: Buffer, start: number, end: number): void {
  let p = start;
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
  lastMeta = Buffer.from(buf.subarray(start, end));
  lastMetaKey = key;
  lastMetaHeaders = Object.freeze(headers);
}

/** Value length of a body without decoding it (for byte budgets before deciding to decode). */
export function bodyValueLength(buf: Buffer, start: number, length: number): number {
  return start + length - valueStart(buf, start);
}

/** Where the value of the body at `start` begins: after the key and the headers, by their lengths alone. */
function valueStart(buf: Buffer, start: number): number {
  let p = start + 17;
  p += 2 + buf.readUInt16BE(p);
  const headerCount = buf.readUInt16BE(p);
  p += 2;
  for (let i = 0; i < headerCount; i++) {
    p += 2 + buf.readUInt16BE(p);
    p += 2 + buf.readUInt16BE(p);
  }
  return p;
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
   * 'visitor' when the visitor asked, null when it reached `end` exactly. With resync, 'torn' and
   * 'corrupt' mean no verifiable record follows the bad bytes: a bad tail, not a damaged record.
   */
  stop: 'torn' | 'corrupt' | 'visitor' | null;
}

/**
 * Bytes between two good records that the scan stepped over: one or more damaged records, holding
 * offsets [firstOffset, nextOffset). The record at `end` verified and carries `nextOffset`.
 */
export interface DamagedRegion {
  position: number;
  end: number;
  firstOffset: number;
  nextOffset: number;
}

export interface ScanOptions {
  chunkBytes?: number;
  /**
   * Step over damaged records instead of stopping at the first one. `trustedStart`: `start` is
   * known to be a record boundary holding `firstOffset` (segment start, or the end of a verified
   * record); a sparse-index position is not, so a bad record right there stops the scan instead
   * (the caller then rescans from a trusted position rather than mistaking a stale index for damage).
   */
  resync?: { trustedStart: boolean; onDamage: (d: DamagedRegion) => void };
}

export const SCAN_CHUNK_BYTES = 256 * 1024;

/**
 * Walks records in fh from `start` (a record boundary whose record carries `firstOffset`) up to
 * `end`, verifying each one, and calls `visit` for each good record. Reads in large chunks so a scan
 * costs one syscall per chunk, not per record.
 *
 * With `resync`, a bad record is not the end: the scan looks, byte by byte, for the next position
 * where a record verifies (length, version, CRC) and carries an offset that fits what can have been
 * lost in between (each record takes at least RECORD_OVERHEAD_BYTES, so k lost records need k times
 * that many bytes). Offsets are checked, not only CRCs, so a record-shaped run of bytes inside a
 * value is never taken for a record. The search is bounded by `end` (one segment) and holds at most
 * one record in memory; it costs a few byte compares per position and a CRC only where the version
 * byte, length and offset already fit.
 */
export async function scanRecords(
  fh: FileHandle,
  start: number,
  end: number,
  firstOffset: number,
  visit: (r: RecordView) => Visit,
  opts: ScanOptions = {},
): Promise<ScanResult> {
  const chunkBytes = opts.chunkBytes ?? SCAN_CHUNK_BYTES;
  let buf = Buffer.allocUnsafe(Math.max(1, Math.min(chunkBytes, end - start)));
  let bufStart = start;
  let bufLength = 0;
  let pos = start;
  let expected = firstOffset;

  // Makes buf hold file bytes [at, at+n); false when the file (or `end`) has fewer. Never moves
  // the window before `at`, so callers only look forward.
  const ensure = async (at: number, n: number): Promise<boolean> => {
    if (at + n > end) return false;
    if (at >= bufStart && at + n <= bufStart + bufLength) return true;
    const keep = Math.max(0, bufStart + bufLength - at);
    const want = Math.min(Math.max(n, chunkBytes), end - at);
    if (buf.length < want) {
      const bigger = Buffer.allocUnsafe(want);
      if (keep > 0) buf.copy(bigger, 0, at - bufStart, at - bufStart + keep);
      buf = bigger;
    } else if (keep > 0) {
      buf.copy(buf, 0, at - bufStart, at - bufStart + keep);
    }
    bufStart = at;
    bufLength = keep;
    while (bufLength < want) {
      const { bytesRead } = await fh.read(buf, bufLength, want - bufLength, bufStart + bufLength);
      // The file is shorter than `end` said (truncated under us): whatever is missing is torn.
      if (bytesRead === 0) return bufLength >= n;
      bufLength += bytesRead;
    }
    return true;
  };

  /** The record at `at` if it verifies and carries an offset in [minOffset, maxOffset]. */
  const check = async (at: number, minOffset: number, maxOffset: number): Promise<'torn' | 'corrupt' | { bodyLength: number; offset: number }> => {
    if (!(await ensure(at, RECORD_HEADER_BYTES))) return 'torn';
    const bodyLength = buf.readUInt32BE(at - bufStart);
    if (bodyLength < MIN_BODY_BYTES || bodyLength + RECORD_HEADER_BYTES > MAX_RECORD_BYTES) return 'corrupt';
    if (!(await ensure(at, RECORD_HEADER_BYTES + bodyLength))) return 'torn';
    const bodyStart = at - bufStart + RECORD_HEADER_BYTES;
    if (buf[bodyStart] !== RECORD_VERSION) return 'corrupt';
    const offset = readU64(buf, bodyStart + 1);
    if (offset < minOffset || offset > maxOffset) return 'corrupt';
    if (crc32(buf.subarray(bodyStart, bodyStart + bodyLength)) !== buf.readUInt32BE(at - bufStart + 4)) return 'corrupt';
    return { bodyLength, offset };
  };

  /** Next position after `from` holding a verifiable record that can follow `expected`, or null. */
  const resync = async (from: number): Promise<{ position: number; offset: number } | null> => {
    let q = from + 1;
    while (q + RECORD_OVERHEAD_BYTES <= end) {
      if (!(await ensure(q, RECORD_OVERHEAD_BYTES))) return null;
      // A synchronous pass over the window: an await per byte would cost more than the filters.
      const last = bufStart + bufLength - RECORD_OVERHEAD_BYTES;
      let candidate = -1;
      let maxOffset = 0;
      for (; q <= last; q++) {
        const at = q - bufStart;
        // Version byte, then the offset's top byte: offsets are safe integers (< 2^53), so it is 0.
        if (buf[at + RECORD_HEADER_BYTES] !== RECORD_VERSION || buf[at + RECORD_HEADER_BYTES + 1] !== 0) continue;
        const bodyLength = buf.readUInt32BE(at);
        if (bodyLength < MIN_BODY_BYTES || bodyLength + RECORD_HEADER_BYTES > MAX_RECORD_BYTES || q + RECORD_HEADER_BYTES + bodyLength > end) continue;
        maxOffset = expected + Math.floor((q - from) / RECORD_OVERHEAD_BYTES);
        const offset = readU64(buf, at + RECORD_HEADER_BYTES + 1);
        if (offset < expected || offset > maxOffset) continue;
        candidate = q;
        break;
      }
      if (candidate < 0) continue;
      const c = await check(candidate, expected, maxOffset);
      if (typeof c === 'object') return { position: candidate, offset: c.offset };
      q = candidate + 1;
    }
    return null;
  };

  for (;;) {
    if (pos === end) return { goodEnd: pos, nextOffset: expected, stop: null };
    const c = await check(pos, expected, expected);
    if (typeof c !== 'object') {
      if (opts.resync === undefined || (pos === start && !opts.resync.trustedStart)) return { goodEnd: pos, nextOffset: expected, stop: c };
      const next = await resync(pos);
      if (next === null) return { goodEnd: pos, nextOffset: expected, stop: c };
      opts.resync.onDamage({ position: pos, end: next.position, firstOffset: expected, nextOffset: next.offset });
      pos = next.position;
      expected = next.offset;
      continue;
    }
    // check() left the whole record in the window.
    const verdict = visit({ buf, bodyStart: pos - bufStart + RECORD_HEADER_BYTES, bodyLength: c.bodyLength, offset: c.offset, position: pos });
    if (verdict === Visit.StopBefore) return { goodEnd: pos, nextOffset: expected, stop: 'visitor' };
    pos += RECORD_HEADER_BYTES + c.bodyLength;
    expected = c.offset + 1;
    if (verdict === Visit.StopAfter) return { goodEnd: pos, nextOffset: expected, stop: 'visitor' };
  }
}
