import { open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decodeBody, encodeRecord, MAX_RECORD_BYTES, prepareMessage, RECORD_OVERHEAD_BYTES, scanRecords, Visit, type PreparedMessage } from './format.ts';
import { makeTempDir } from './test-helpers.ts';

function encodeAll(ms: PreparedMessage[], firstOffset: number): Buffer {
  const buf = Buffer.alloc(ms.reduce((s, m) => s + m.size, 0));
  let pos = 0;
  ms.forEach((m, i) => (pos = encodeRecord(buf, pos, m, firstOffset + i)));
  expect(pos).toBe(buf.length);
  return buf;
}

describe('record format', () => {
  let tmp: Awaited<ReturnType<typeof makeTempDir>>;
  beforeEach(async () => {
    tmp = await makeTempDir();
  });
  afterEach(async () => {
    await tmp.cleanup();
  });

  it('round-trips key, headers, value, offset and timestamp, including extremes', () => {
    const m = prepareMessage(
      { key: 'tenant-ü-😀', value: Buffer.from([0, 1, 2, 255]), headers: { traceparent: '00-abc', 'x-é': 'ß' }, timestamp: -1_234_567 },
      MAX_RECORD_BYTES,
      0,
    );
    const offset = 2 ** 40 + 17;
    const buf = Buffer.alloc(m.size);
    expect(encodeRecord(buf, 0, m, offset)).toBe(m.size);
    const d = decodeBody(buf, 8, m.size - 8, 'topic', 2);
    expect(d).toEqual({
      topic: 'topic',
      partition: 2,
      offset,
      key: 'tenant-ü-😀',
      value: Buffer.from([0, 1, 2, 255]),
      headers: { traceparent: '00-abc', 'x-é': 'ß' },
      timestamp: -1_234_567,
    });
    const bare = prepareMessage({ key: '', value: Buffer.alloc(0) }, MAX_RECORD_BYTES, 1_700_000_000_123);
    expect(bare.size).toBe(RECORD_OVERHEAD_BYTES);
    const b2 = Buffer.alloc(bare.size);
    encodeRecord(b2, 0, bare, 0);
    expect(decodeBody(b2, 8, bare.size - 8, 't', 0)).toMatchObject({ key: '', headers: {}, timestamp: 1_700_000_000_123, value: Buffer.alloc(0) });
  });

  it('rejects messages it cannot store faithfully', () => {
    expect(() => prepareMessage({ key: 'k', value: 'x' as unknown as Buffer }, MAX_RECORD_BYTES, 0)).toThrow(TypeError);
    expect(() => prepareMessage({ key: 'k'.repeat(70_000), value: Buffer.alloc(0) }, MAX_RECORD_BYTES, 0)).toThrow(RangeError);
    expect(() => prepareMessage({ key: 'k', value: Buffer.alloc(0), timestamp: 1.5 }, MAX_RECORD_BYTES, 0)).toThrow(RangeError);
    expect(() => prepareMessage({ key: 'k', value: Buffer.alloc(2000) }, 1000, 0)).toThrow(/limit is 1000/);
  });

  it('scan stops at a torn record, a CRC mismatch and an out-of-sequence offset', async () => {
    const ms = [0, 1, 2].map((i) => prepareMessage({ key: `k${i}`, value: Buffer.from(`value-${i}`) }, MAX_RECORD_BYTES, 0));
    const good = encodeAll(ms, 10);
    const second = ms[0]!.size;
    const third = second + ms[1]!.size;
    const scan = async (bytes: Buffer, firstOffset = 10) => {
      const path = join(tmp.dir, 'seg');
      await writeFile(path, bytes);
      const fh = await open(path, 'r');
      try {
        const seen: number[] = [];
        const r = await scanRecords(fh, 0, bytes.length, firstOffset, (v) => (seen.push(v.offset), Visit.Continue), 16);
        return { ...r, seen };
      } finally {
        await fh.close();
      }
    };
    expect(await scan(good)).toEqual({ goodEnd: good.length, nextOffset: 13, stop: null, seen: [10, 11, 12] });
    expect(await scan(good.subarray(0, good.length - 3))).toEqual({ goodEnd: third, nextOffset: 12, stop: 'torn', seen: [10, 11] });
    const flipped = Buffer.from(good);
    flipped[second + 20] = flipped[second + 20]! ^ 0x40;
    expect(await scan(flipped)).toEqual({ goodEnd: second, nextOffset: 11, stop: 'corrupt', seen: [10] });
    expect(await scan(good, 9)).toEqual({ goodEnd: 0, nextOffset: 9, stop: 'corrupt', seen: [] });
    const hugeLength = Buffer.from(good);
    hugeLength.writeUInt32BE(0xfffffff0, third);
    expect(await scan(hugeLength)).toMatchObject({ goodEnd: third, stop: 'corrupt' });
  });
});
