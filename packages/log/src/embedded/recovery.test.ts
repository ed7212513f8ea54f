import { open, readdir, readFile, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LogUnavailableError, type StoredMessage } from '../types.ts';
import { createEmbeddedLog, type CorruptRecordInfo, type EmbeddedLog, type EmbeddedLogOptions, type TornTailInfo } from './log.ts';
import { fingerprint, makeTempDir, messages, segmentFiles, waitFor } from '../../test/embedded-helpers.ts';

describe('embedded log: recovery and read-only access', () => {
  let tmp: Awaited<ReturnType<typeof makeTempDir>>;
  const opened: EmbeddedLog[] = [];
  const openLog = (o: Partial<EmbeddedLogOptions> = {}): EmbeddedLog => {
    const log = createEmbeddedLog({ dir: tmp.dir, partitions: 1, ...o });
    opened.push(log);
    return log;
  };
  const segmentPath = (name = `${'0'.repeat(20)}.log`) => join(tmp.dir, 'topics', 't', '0', name);

  /** Writes ten 1-message sends and returns the encoded size of each record (all equal). */
  async function writeTen(): Promise<number> {
    const log = openLog();
    for (let i = 0; i < 10; i++) await log.producer().send('t', messages(1, { tag: `r${i}`, key: () => 'k' }));
    await log.close();
    return (await stat(segmentPath())).size / 10;
  }

  beforeEach(async () => {
    tmp = await makeTempDir();
  });
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((l) => l.close()));
    await tmp.cleanup();
  });

  it('truncates a torn tail on open, reports it, keeps earlier records and continues at the right offset', async () => {
    const recordBytes = await writeTen();
    const fullSize = recordBytes * 10;
    await truncate(segmentPath(), fullSize - 7); // the last record loses its last 7 bytes

    const torn: TornTailInfo[] = [];
    const log = openLog({ onTornTail: (i) => torn.push(i) });
    await log.ready();
    expect(torn).toEqual([{ topic: 't', partition: 0, segment: segmentPath(), truncatedBytes: recordBytes - 7 }]);
    expect(log.stats()).toMatchObject({ tornTails: 1, tornBytes: recordBytes - 7 });
    expect((await stat(segmentPath())).size).toBe(recordBytes * 9);

    const admin = log.admin();
    expect(await admin.partitions('t')).toEqual([{ partition: 0, low: 0, high: 9 }]);
    const kept = await admin.read('t', 0, 0, 100);
    expect(kept.map((m) => m.value.toString())).toEqual(Array.from({ length: 9 }, (_, i) => `r${i}-0`));

    const [range] = await log.producer().send('t', messages(2, { tag: 'after', key: () => 'k' }));
    expect(range).toEqual({ partition: 0, firstOffset: 9, lastOffset: 10 });
    await log.close();

    // The repaired log opens cleanly and holds exactly 11 records.
    const reopened: TornTailInfo[] = [];
    const again = openLog({ onTornTail: (i) => reopened.push(i) });
    const all = await again.admin().read('t', 0, 0, 100);
    expect(reopened).toEqual([]);
    expect(all.map((m) => [m.offset, m.value.toString()])).toEqual([
      ...Array.from({ length: 9 }, (_, i) => [i, `r${i}-0`]),
      [9, 'after-0'],
      [10, 'after-1'],
    ]);
  });

  it('treats a flipped byte in the last record as a torn tail: truncated and counted', async () => {
    const recordBytes = await writeTen();
    const bytes = await readFile(segmentPath());
    const inLast = recordBytes * 9 + recordBytes - 3; // inside the last record's value
    bytes[inLast] = bytes[inLast]! ^ 0xff;
    await writeFile(segmentPath(), bytes);

    const torn: TornTailInfo[] = [];
    const log = openLog({ onTornTail: (i) => torn.push(i) });
    expect(await log.admin().partitions('t')).toEqual([{ partition: 0, low: 0, high: 9 }]);
    expect(torn).toEqual([{ topic: 't', partition: 0, segment: segmentPath(), truncatedBytes: recordBytes }]);
    expect(log.stats().tornTails).toBe(1);
    const [range] = await log.producer().send('t', messages(1, { key: () => 'k' }));
    expect(range!.firstOffset).toBe(9);
  });

  it('a whole segment of garbage is cut back to empty without throwing', async () => {
    const log0 = openLog();
    await log0.admin().ensureTopic('t', 1);
    await log0.close();
    await writeFile(segmentPath(), Buffer.alloc(5000, 0xab));
    const torn: TornTailInfo[] = [];
    const log = openLog({ onTornTail: (i) => torn.push(i) });
    expect(await log.admin().partitions('t')).toEqual([{ partition: 0, low: 0, high: 0 }]);
    expect(torn[0]?.truncatedBytes).toBe(5000);
    expect(await log.producer().send('t', messages(1))).toEqual([{ partition: 0, firstOffset: 0, lastOffset: 0 }]);
  });

  /** Every message of the topic through a real consumer group, until `n` arrived (bounded). */
  async function consumeAll(log: EmbeddedLog, n: number, group = 'loader'): Promise<StoredMessage[]> {
    const c = log.consumer({ group, topic: 't', maxBatchMessages: 64, maxBatchBytes: 1 << 20, maxWaitMs: 0 });
    const got: StoredMessage[] = [];
    const run = c.run(async (b) => {
      got.push(...b.messages);
    });
    await waitFor(() => got.length >= n, 10_000);
    await c.close();
    await run;
    return got;
  }

  /** Start of every record in a segment's bytes, and its end, by walking the length fields. */
  function recordPositions(bytes: Buffer): number[] {
    const out = [0];
    for (let p = 0; p < bytes.length; ) out.push((p += 8 + bytes.readUInt32BE(p)));
    return out;
  }

  /** Values delivered, with how many times each arrived (a Set would hide duplicates). */
  function tally(ms: StoredMessage[]): Map<string, number> {
    const counts = new Map<string, number>();
    for (const m of ms) counts.set(m.value.toString(), (counts.get(m.value.toString()) ?? 0) + 1);
    return counts;
  }

  it('a byte flipped mid-segment costs that record only: after restart every other record arrives once, at its offset', async () => {
    const log0 = openLog();
    for (let b = 0; b < 20; b++) await log0.producer().send('t', messages(50, { tag: `b${b}`, key: () => 'k' }));
    await log0.close();
    const original = await readFile(segmentPath());
    const at = recordPositions(original);
    expect(at.length).toBe(1001);
    const bad = 500;
    const recordBytes = at[bad + 1]! - at[bad]!;
    const damaged = Buffer.from(original);
    damaged[at[bad]! + Math.floor(recordBytes / 2)]! ^= 0x20;
    await writeFile(segmentPath(), damaged);

    const corrupt: CorruptRecordInfo[] = [];
    const torn: TornTailInfo[] = [];
    const log = openLog({ onCorruptRecord: (i) => corrupt.push(i), onTornTail: (i) => torn.push(i) });
    await log.ready();
    expect(torn).toEqual([]);
    expect((await stat(segmentPath())).size).toBe(original.length); // nothing cut
    expect(await log.admin().partitions('t')).toEqual([{ partition: 0, low: 0, high: 1000 }]);

    const got = await consumeAll(log, 999);
    const counts = tally(got);
    expect(got.length).toBe(999);
    for (let i = 0; i < 1000; i++) {
      const value = `b${Math.floor(i / 50)}-${i % 50}`;
      expect(counts.get(value) ?? 0, value).toBe(i === bad ? 0 : 1);
    }
    for (const m of got) expect(m.value.toString()).toBe(`b${Math.floor(m.offset / 50)}-${m.offset % 50}`);

    const quarantine = join(tmp.dir, 'topics', 't', '0', 'quarantine', `${'0'.repeat(20)}.log.at-${at[bad]}.offsets-500-500.bad`);
    expect(corrupt).toEqual([
      { topic: 't', partition: 0, segment: segmentPath(), position: at[bad], bytes: recordBytes, firstOffset: 500, nextOffset: 501, records: 1, quarantine },
    ]);
    expect(await readFile(quarantine)).toEqual(damaged.subarray(at[bad], at[bad + 1]));
    expect(log.stats()).toMatchObject({ corruptRecords: 1, tornTails: 0 });

    // The damaged offset is never handed out again.
    const [range] = await log.producer().send('t', messages(1, { tag: 'after', key: () => 'k' }));
    expect(range).toEqual({ partition: 0, firstOffset: 1000, lastOffset: 1000 });
    expect((await log.admin().read('t', 0, bad, 2)).map((m) => m.offset)).toEqual([501, 502]);
  });

  it('damage followed by a torn tail: the damaged record is quarantined, only the tail is cut', async () => {
    const recordBytes = await writeTen();
    const bytes = await readFile(segmentPath());
    bytes.writeUInt32BE(0x00ffffff, 3 * recordBytes); // record 3's length field
    await writeFile(segmentPath(), bytes.subarray(0, recordBytes * 10 - 5)); // and record 9 torn

    const corrupt: CorruptRecordInfo[] = [];
    const torn: TornTailInfo[] = [];
    const log = openLog({ onCorruptRecord: (i) => corrupt.push(i), onTornTail: (i) => torn.push(i) });
    expect((await log.admin().read('t', 0, 0, 100)).map((m) => m.offset)).toEqual([0, 1, 2, 4, 5, 6, 7, 8]);
    expect(corrupt).toMatchObject([{ position: 3 * recordBytes, bytes: recordBytes, firstOffset: 3, nextOffset: 4 }]);
    expect(torn).toMatchObject([{ truncatedBytes: recordBytes - 5 }]);
    const [range] = await log.producer().send('t', messages(1, { key: () => 'k' }));
    expect(range!.firstOffset).toBe(9); // the torn record was never visible, so its offset is free
  });

  it('a consumer that meets damage in a sealed segment while the log runs steps over it, once, and never stalls', async () => {
    const corrupt: CorruptRecordInfo[] = [];
    const errors: unknown[] = [];
    const log = openLog({ segmentBytes: 4096, onCorruptRecord: (i) => corrupt.push(i), onConsumerError: (e) => errors.push(e) });
    for (let b = 0; b < 10; b++) await log.producer().send('t', messages(10, { tag: `b${b}`, valueBytes: 50, key: () => 'k' }));
    const segs = await segmentFiles(join(tmp.dir, 'topics', 't', '0'));
    expect(segs.length).toBeGreaterThan(2);
    const secondBase = Number(segs[1]!.slice(0, 20));
    const first = await readFile(segmentPath(segs[0]));
    const recordBytes = first.length / secondBase;
    // Bit rot under the running writer: record 5 of the first (sealed) segment, and the last
    // record of the second, which has no good record after it in its segment.
    const thirdBase = Number(segs[2]!.slice(0, 20));
    const fh = await open(segmentPath(segs[0]), 'r+');
    await fh.write(Buffer.from([0xff, 0xff]), 0, 2, 5 * recordBytes + 30);
    await fh.close();
    const fh2 = await open(segmentPath(segs[1]), 'r+');
    await fh2.write(Buffer.from([0xff]), 0, 1, (thirdBase - 1 - secondBase) * recordBytes + 30);
    await fh2.close();

    const again = log; // same process: the consumer finds the damage, not recovery
    const c = again.consumer({ group: 'loader', topic: 't', maxBatchMessages: 7, maxBatchBytes: 1 << 20, maxWaitMs: 0 });
    const got: StoredMessage[] = [];
    const run = c.run(async (b) => {
      got.push(...b.messages);
    });
    await waitFor(() => got.length >= 98, 10_000);
    await c.close();
    await run;
    expect(got.map((m) => m.offset)).toEqual(Array.from({ length: 100 }, (_, i) => i).filter((o) => o !== 5 && o !== thirdBase - 1));
    expect(errors).toEqual([]);
    expect(corrupt.map((i) => [i.firstOffset, i.nextOffset])).toEqual([
      [5, 6],
      [thirdBase - 1, thirdBase],
    ]);
    expect(again.stats().corruptRecords).toBe(2);
    // Reading over the same damage again neither re-counts nor stalls; starting inside it lands after it.
    expect((await again.admin().read('t', 0, 5, 1))[0]?.offset).toBe(6);
    expect((await again.admin().read('t', 0, thirdBase - 1, 1))[0]?.offset).toBe(thirdBase);
    expect(again.stats().corruptRecords).toBe(2);
    const q = await readdir(join(tmp.dir, 'topics', 't', '0', 'quarantine'));
    expect(q.sort()).toEqual([
      `${segs[0]}.at-${5 * recordBytes}.offsets-5-5.bad`,
      `${segs[1]}.at-${(thirdBase - 1 - secondBase) * recordBytes}.offsets-${thirdBase - 1}-${thirdBase - 1}.bad`,
    ]);
  });

  it('a read-only open reports damage but writes no quarantine', async () => {
    const recordBytes = await writeTen();
    const bytes = await readFile(segmentPath());
    bytes[4 * recordBytes + 20]! ^= 0x01;
    await writeFile(segmentPath(), bytes);
    const before = await fingerprint(tmp.dir);
    const corrupt: CorruptRecordInfo[] = [];
    const ro = openLog({ readOnly: true, onCorruptRecord: (i) => corrupt.push(i) });
    expect((await ro.admin().read('t', 0, 0, 100)).map((m) => m.offset)).toEqual([0, 1, 2, 3, 5, 6, 7, 8, 9]);
    expect(corrupt).toMatchObject([{ firstOffset: 4, nextOffset: 5, quarantine: null }]);
    await ro.close();
    expect(await fingerprint(tmp.dir)).toEqual(before);
  });

  it('a wrong sparse index never yields wrong records', async () => {
    const log = openLog({ segmentBytes: 200 * 1024 });
    for (let b = 0; b < 8; b++) await log.producer().send('t', messages(100, { tag: `b${b}`, valueBytes: 300, key: () => 'k' }));
    await log.close();
    // Entries that point into the middle of records and at the wrong offsets.
    const lying = Buffer.alloc(16);
    lying.writeUInt32BE(50, 0);
    lying.writeUInt32BE(33_333, 4);
    lying.writeUInt32BE(100, 8);
    lying.writeUInt32BE(66_666, 12);
    await writeFile(segmentPath().replace(/\.log$/, '.index'), lying);
    const again = openLog({ segmentBytes: 200 * 1024 });
    for (const offset of [10, 60, 120, 300]) {
      const [m] = await again.admin().read('t', 0, offset, 1);
      expect(m?.offset).toBe(offset);
      expect(m?.value.toString()).toMatch(new RegExp(`^b${Math.floor(offset / 100)}-${offset % 100}\\.`));
    }
  });

  it('read-only open never writes: same bytes and mtimes, even with a torn tail and a running consumer', async () => {
    const recordBytes = await writeTen();
    const writer = openLog();
    await writer.producer().send('u', messages(5));
    const c = writer.consumer({ group: 'loader', topic: 't', maxBatchMessages: 4, maxBatchBytes: 1 << 20, maxWaitMs: 0 });
    let n = 0;
    const run = c.run(async (b) => {
      n += b.messages.length;
    });
    while (n < 10) await new Promise((r) => setTimeout(r, 5));
    await c.close();
    await run;
    await writer.close();
    await truncate(segmentPath(), recordBytes * 10 - 4);
    const before = await fingerprint(tmp.dir);

    const torn: TornTailInfo[] = [];
    const ro = openLog({ readOnly: true, onTornTail: (i) => torn.push(i), pollIntervalMs: 10 });
    const admin = ro.admin();
    expect(await admin.partitions('t')).toEqual([{ partition: 0, low: 0, high: 9 }]);
    expect(torn).toEqual([{ topic: 't', partition: 0, segment: segmentPath(), truncatedBytes: recordBytes - 4 }]);
    expect((await admin.read('t', 0, 0, 100)).length).toBe(9);
    expect(await admin.committed('loader', 't')).toEqual([{ partition: 0, offset: 10 }]);
    await expect(admin.ensureTopic('new-topic', 1)).rejects.toBeInstanceOf(LogUnavailableError);
    await expect(ro.producer().send('t', messages(1))).rejects.toBeInstanceOf(LogUnavailableError);
    // A consumer on a read-only log keeps its offsets in memory only.
    const roc = ro.consumer({ group: 'inspector', topic: 't', maxBatchMessages: 100, maxBatchBytes: 1 << 20, maxWaitMs: 0 });
    const seen: number[] = [];
    const roRun = roc.run(async (b) => {
      seen.push(...b.messages.map((m) => m.offset));
    });
    while (seen.length < 9) await new Promise((r) => setTimeout(r, 5));
    await roc.close();
    await roRun;
    await ro.close();

    expect(await fingerprint(tmp.dir)).toEqual(before);
  });

  it('read-only open sees what the owning writer appends later', async () => {
    const writer = openLog();
    await writer.producer().send('t', messages(3, { key: () => 'k' }));
    const ro = openLog({ readOnly: true });
    expect((await ro.admin().partitions('t'))[0]?.high).toBe(3);
    await writer.producer().send('t', messages(4, { key: () => 'k', tag: 'later' }));
    expect((await ro.admin().partitions('t'))[0]?.high).toBe(7);
    expect((await ro.admin().read('t', 0, 3, 10)).map((m) => m.value.toString())).toEqual(['later-0', 'later-1', 'later-2', 'later-3']);
  });

  it('read-only open of a missing directory fails clearly', async () => {
    const ro = createEmbeddedLog({ dir: join(tmp.dir, 'nope'), readOnly: true });
    await expect(ro.ready()).rejects.toThrow(/no embedded log at/);
    await ro.close();
  });
});
