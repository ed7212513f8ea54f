import { open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  decodeBody,
  encodeRecord,
  MAX_RECORD_BYTES,
  prepareMessage,
  RECORD_OVERHEAD_BYTES,
  scanRecords,
  Visit,
  type DamagedRegion,
  type PreparedMessage,
  type ScanOptions,
} from './format.ts';
import { makeTempDir } from '../../test/embedded-helpers.ts';

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

  it('decodes each record with its own key and headers when runs of records share them', () => {
    type Kind = { key: string; headers?: Record<string, string> };
    const a: Kind = { key: 'acme', headers: { 'x-tenant': 'acme', 'x-v': 'v2' } };
    const b: Kind = { key: 'acme', headers: { 'x-tenant': 'acme', 'x-v': 'v1' } };
    const c: Kind = { key: 'globex', headers: { 'x-tenant': 'globex', 'x-v': 'v2' } };
    const d: Kind = { key: 'acmf', headers: { 'x-tenant': 'acme', 'x-v': 'v2' } };
    const kinds: Kind[] = [a, a, b, a, c, c, d, { key: '' }, a];
    const ms = kinds.map((k, i) => prepareMessage({ key: k.key, headers: k.headers && { ...k.headers }, value: Buffer.from(`v${i}`) }, MAX_RECORD_BYTES, 5));
    const buf = encodeAll(ms, 100);
    let pos = 0;
    const got = ms.map((m) => {
      const r = decodeBody(buf, pos + 8, m.size - 8, 't', 0);
      pos += m.size;
      return r;
    });
    expect(got.map((r) => [r.key, r.headers, r.value.toString(), r.offset])).toEqual(kinds.map((k, i) => [k.key, k.headers ?? {}, `v${i}`, 100 + i]));
    // A run shares one decoded headers object, which nobody can change under the others.
    expect(got[1]!.headers).toBe(got[0]!.headers);
    expect(() => {
      got[0]!.headers['x-tenant'] = 'other';
    }).toThrow(TypeError);
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
        const r = await scanRecords(fh, 0, bytes.length, firstOffset, (v) => (seen.push(v.offset), Visit.Continue), { chunkBytes: 16 });
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

  describe('resync over damaged records', () => {
    const ms = Array.from({ length: 40 }, (_, i) => prepareMessage({ key: `k${i}`, value: Buffer.from(`value-${i}-`.padEnd(20 + (i % 7), 'x')) }, MAX_RECORD_BYTES, 0));
    const good = encodeAll(ms, 100);
    const posOf = (i: number) => ms.slice(0, i).reduce((n, m) => n + m.size, 0);
    const scan = async (bytes: Buffer, o: { start?: number; firstOffset?: number; trustedStart?: boolean } = {}) => {
      const path = join(tmp.dir, 'seg');
      await writeFile(path, bytes);
      const fh = await open(path, 'r');
      const damages: DamagedRegion[] = [];
      const opts: ScanOptions = { chunkBytes: 64, resync: { trustedStart: o.trustedStart ?? true, onDamage: (d) => damages.push(d) } };
      try {
        const seen: number[] = [];
        const r = await scanRecords(fh, o.start ?? 0, bytes.length, o.firstOffset ?? 100, (v) => (seen.push(v.offset), Visit.Continue), opts);
        return { ...r, seen, damages };
      } finally {
        await fh.close();
      }
    };
    const allBut = (...lost: number[]) => Array.from({ length: 40 }, (_, i) => 100 + i).filter((o) => !lost.includes(o));

    it('steps over a record with a flipped value byte to the next one, offsets unchanged', async () => {
      const b = Buffer.from(good);
      b[posOf(17) + 25] = b[posOf(17) + 25]! ^ 0x01;
      const r = await scan(b);
      expect(r.seen).toEqual(allBut(117));
      expect(r.damages).toEqual([{ position: posOf(17), end: posOf(18), firstOffset: 117, nextOffset: 118 }]);
      expect(r).toMatchObject({ goodEnd: good.length, nextOffset: 140, stop: null });
    });

    it('resyncs when the length field itself is damaged (too long, too short, past the end)', async () => {
      for (const length of [ms[17]!.size + 3, 30, 0x0fffffff]) {
        const b = Buffer.from(good);
        b.writeUInt32BE(length, posOf(17));
        const r = await scan(b);
        expect(r.seen).toEqual(allBut(117));
        expect(r.damages).toEqual([{ position: posOf(17), end: posOf(18), firstOffset: 117, nextOffset: 118 }]);
      }
    });

    it('a stretch spanning several records costs exactly those records', async () => {
      const b = Buffer.from(good);
      b.fill(0, posOf(10) + 12, posOf(13) + 9); // from inside record 10 to inside record 13
      const r = await scan(b);
      expect(r.seen).toEqual(allBut(110, 111, 112, 113));
      expect(r.damages).toEqual([{ position: posOf(10), end: posOf(14), firstOffset: 110, nextOffset: 114 }]);
    });

    it('bad bytes with no good record after them are a bad tail, not damage', async () => {
      const b = Buffer.from(good);
      b[posOf(39) + 20] = b[posOf(39) + 20]! ^ 0x10;
      expect(await scan(b)).toMatchObject({ goodEnd: posOf(39), nextOffset: 139, stop: 'corrupt', damages: [] });
      expect(await scan(good.subarray(0, posOf(39) + 5))).toMatchObject({ goodEnd: posOf(39), nextOffset: 139, stop: 'torn', damages: [] });
    });

    it('never takes a record with an offset that cannot follow (stale or foreign bytes)', async () => {
      // Record 20 moved to where record 5 was: it verifies, but offset 120 cannot follow 104 after
      // one record's worth of bytes, so the scan resyncs to the real record 6.
      const b = Buffer.from(good);
      const moved = good.subarray(posOf(20), posOf(21));
      b.fill(0xee, posOf(5), posOf(6));
      moved.copy(b, posOf(5), 0, Math.min(moved.length, ms[5]!.size));
      const r = await scan(b);
      expect(r.seen).toEqual(allBut(105));
    });

    it('from an untrusted start (a sparse-index hint) a bad first record stops the scan instead', async () => {
      const b = Buffer.from(good);
      const r = await scan(b, { start: posOf(10) + 3, firstOffset: 110, trustedStart: false });
      expect(r).toMatchObject({ goodEnd: posOf(10) + 3, stop: 'corrupt', seen: [], damages: [] });
    });
  });
});
