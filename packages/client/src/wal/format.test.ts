import { describe, expect, it } from 'vitest';
import { checkRecord, decodeCheckpoint, encodeCheckpoint, encodeRecord, recordSize, scanSegment } from './format.ts';

function segment(payloads: string[], base = 0): { buf: Buffer; positions: number[] } {
  const bufs = payloads.map((p) => Buffer.from(p));
  const buf = Buffer.alloc(bufs.reduce((n, b) => n + recordSize(b.length), 0));
  const positions: number[] = [];
  let pos = 0;
  bufs.forEach((b, i) => {
    positions.push(pos);
    pos = encodeRecord(buf, pos, base + i, 1_700_000_000_000 + i, b);
  });
  return { buf, positions };
}

describe('record format', () => {
  it('round-trips offset, appendedAt and payload', () => {
    const { buf } = segment(['{"a":1}'], 42);
    const c = checkRecord(buf, 0, buf.length, 0, Number.MAX_SAFE_INTEGER);
    expect(c.kind).toBe('ok');
    if (c.kind !== 'ok') return;
    expect(c.record.offset).toBe(42);
    expect(c.record.appendedAt).toBe(1_700_000_000_000);
    expect(buf.toString('utf8', c.record.payloadStart, c.record.payloadEnd)).toBe('{"a":1}');
    expect(c.record.size).toBe(buf.length);
  });

  it('encodes offsets beyond 2^32 exactly', () => {
    const { buf } = segment(['x'], 2 ** 40 + 7);
    const c = checkRecord(buf, 0, buf.length, 0, Number.MAX_SAFE_INTEGER);
    expect(c.kind === 'ok' && c.record.offset).toBe(2 ** 40 + 7);
  });

  it('calls a cut-short record torn and a flipped byte corrupt', () => {
    const { buf } = segment(['hello world']);
    expect(checkRecord(buf, 0, buf.length - 1, 0, 100).kind).toBe('torn');
    expect(checkRecord(buf, 0, 5, 0, 100).kind).toBe('torn');
    const flipped = Buffer.from(buf);
    flipped[flipped.length - 3]! ^= 0x40;
    expect(checkRecord(flipped, 0, flipped.length, 0, 100).kind).toBe('corrupt');
  });

  it('refuses a record whose offset is outside the bounds given', () => {
    const { buf } = segment(['x'], 10);
    expect(checkRecord(buf, 0, buf.length, 11, 100).kind).toBe('corrupt');
    expect(checkRecord(buf, 0, buf.length, 0, 9).kind).toBe('corrupt');
  });
});

describe('scanSegment', () => {
  const payloads = Array.from({ length: 10 }, (_, i) => JSON.stringify({ i, pad: 'x'.repeat(i * 3) }));

  it('returns every record of a clean segment', () => {
    const { buf } = segment(payloads, 100);
    const s = scanSegment(buf, buf.length, 100, Number.MAX_SAFE_INTEGER);
    expect(s.records.map((r) => r.offset)).toEqual(payloads.map((_, i) => 100 + i));
    expect(s.gaps).toEqual([]);
    expect(s.badTail).toBeNull();
    expect(s.goodEnd).toBe(buf.length);
  });

  it('skips one record with a flipped payload byte and keeps every record after it', () => {
    const { buf, positions } = segment(payloads);
    buf[positions[4]! + 30]! ^= 0xff;
    const s = scanSegment(buf, buf.length, 0, Number.MAX_SAFE_INTEGER);
    expect(s.records.map((r) => r.offset)).toEqual([0, 1, 2, 3, 5, 6, 7, 8, 9]);
    expect(s.gaps).toEqual([{ from: positions[4], to: positions[5], expectedOffset: 4, resumedOffset: 5 }]);
    expect(s.badTail).toBeNull();
  });

  it('re-synchronises after a corrupted length field', () => {
    const { buf, positions } = segment(payloads);
    buf.writeUInt32BE(0x7fffff, positions[2]!);
    const s = scanSegment(buf, buf.length, 0, Number.MAX_SAFE_INTEGER);
    expect(s.records.map((r) => r.offset)).toEqual([0, 1, 3, 4, 5, 6, 7, 8, 9]);
    expect(s.gaps).toHaveLength(1);
  });

  it('reports a torn last record as a bad tail and keeps the rest', () => {
    const { buf, positions } = segment(payloads);
    const s = scanSegment(buf, buf.length - 4, 0, Number.MAX_SAFE_INTEGER);
    expect(s.records).toHaveLength(9);
    expect(s.badTail).toEqual({ from: positions[9], torn: true, expectedOffset: 9 });
    expect(s.goodEnd).toBe(positions[9]);
  });

  it('treats a zero-filled tail (lost after a power cut) as a bad tail', () => {
    const { buf } = segment(payloads);
    const padded = Buffer.concat([buf, Buffer.alloc(4096)]);
    const s = scanSegment(padded, padded.length, 0, Number.MAX_SAFE_INTEGER);
    expect(s.records).toHaveLength(10);
    expect(s.badTail?.from).toBe(buf.length);
  });

  it('finds nothing in random bytes without throwing', () => {
    const junk = Buffer.alloc(64 * 1024);
    for (let i = 0; i < junk.length; i++) junk[i] = (i * 2654435761) >>> 24;
    const s = scanSegment(junk, junk.length, 0, Number.MAX_SAFE_INTEGER);
    expect(s.records).toEqual([]);
    expect(s.badTail?.from).toBe(0);
  });
});

describe('checkpoint', () => {
  it('round-trips, including -1 (nothing acked)', () => {
    expect(decodeCheckpoint(encodeCheckpoint(-1))).toBe(-1);
    expect(decodeCheckpoint(encodeCheckpoint(123_456_789_012))).toBe(123_456_789_012);
  });

  it('rejects a damaged or short checkpoint', () => {
    const b = encodeCheckpoint(77);
    b[12]! ^= 1;
    expect(decodeCheckpoint(b)).toBeNull();
    expect(decodeCheckpoint(encodeCheckpoint(77).subarray(0, 10))).toBeNull();
  });
});
