import { open, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LogUnavailableError, type AppendedRange } from '../types.ts';
import { createEmbeddedLog, type EmbeddedLog, type EmbeddedLogOptions } from './log.ts';
import { partitionForKey } from './partitioner.ts';
import { makeTempDir, messages, segmentFiles } from '../../test/embedded-helpers.ts';

describe('embedded log: producer, admin, segments', () => {
  let tmp: Awaited<ReturnType<typeof makeTempDir>>;
  const open_: EmbeddedLog[] = [];
  const openLog = (o: Partial<EmbeddedLogOptions> = {}): EmbeddedLog => {
    const log = createEmbeddedLog({ dir: tmp.dir, ...o });
    open_.push(log);
    return log;
  };
  beforeEach(async () => {
    tmp = await makeTempDir();
  });
  afterEach(async () => {
    await Promise.all(open_.splice(0).map((l) => l.close()));
    vi.restoreAllMocks();
    await tmp.cleanup();
  });

  it('appends and reads back every field at the offsets send reported', async () => {
    const log = openLog();
    const sent = messages(40);
    const ranges = await log.producer().send('telemetry.v2', sent);
    const admin = log.admin();
    const byPartition = new Map<number, typeof sent>();
    for (const m of sent) {
      const p = partitionForKey(m.key, 3);
      byPartition.set(p, [...(byPartition.get(p) ?? []), m]);
    }
    expect(ranges).toEqual(
      [...byPartition.entries()].sort(([a], [b]) => a - b).map(([partition, ms]) => ({ partition, firstOffset: 0, lastOffset: ms.length - 1 })),
    );
    for (const [p, ms] of byPartition) {
      const got = await admin.read('telemetry.v2', p, 0, 1000);
      expect(got).toEqual(
        ms.map((m, i) => ({ topic: 'telemetry.v2', partition: p, offset: i, key: m.key, value: m.value, headers: m.headers, timestamp: m.timestamp })),
      );
      // A read from the middle starts exactly there and honours maxMessages.
      expect((await admin.read('telemetry.v2', p, 1, 2)).map((m) => m.offset)).toEqual([1, 2]);
    }
    // A second send continues the offsets.
    const more = await log.producer().send('telemetry.v2', [{ key: sent[0]!.key, value: Buffer.from('next') }]);
    const p0 = partitionForKey(sent[0]!.key, 3);
    expect(more).toEqual([{ partition: p0, firstOffset: byPartition.get(p0)!.length, lastOffset: byPartition.get(p0)!.length }]);
    expect(await admin.partitions('telemetry.v2')).toEqual(
      [0, 1, 2].map((p) => ({ partition: p, low: 0, high: (byPartition.get(p)?.length ?? 0) + (p === p0 ? 1 : 0) })),
    );
  });

  it('persists topic metadata and partitions by key the same way after reopening', async () => {
    const log = openLog({ partitions: 5 });
    await log.admin().ensureTopic('events', 7);
    const first = await log.producer().send('events', [{ key: 'tenant-a', value: Buffer.from('1') }]);
    await log.close();
    const meta = JSON.parse(await readFile(join(tmp.dir, 'topics', 'events', 'topic.json'), 'utf8')) as { partitions: number };
    expect(meta.partitions).toBe(7);

    const again = openLog({ partitions: 2 });
    const second = await again.producer().send('events', [{ key: 'tenant-a', value: Buffer.from('2') }]);
    expect((await again.admin().partitions('events')).length).toBe(7);
    expect(first[0]!.partition).toBe(partitionForKey('tenant-a', 7));
    expect(second).toEqual([{ partition: first[0]!.partition, firstOffset: 1, lastOffset: 1 }]);
  });

  it('gives concurrent sends contiguous, non-overlapping ranges, each send in order', async () => {
    const log = openLog({ partitions: 3 });
    const producer = log.producer();
    const callers = 60;
    const results = await Promise.all(
      Array.from({ length: callers }, (_, c) => producer.send('t', messages(25, { tag: `c${c}`, key: (i) => `tenant-${(c + i) % 4}` }))),
    );
    const admin = log.admin();
    for (const p of [0, 1, 2]) {
      const ranges = results
        .map((r, c) => ({ c, r: r.find((x) => x.partition === p) }))
        .filter((x): x is { c: number; r: AppendedRange } => x.r !== undefined)
        .sort((a, b) => a.r.firstOffset - b.r.firstOffset);
      let expectedFirst = 0;
      const stored = await admin.read('t', p, 0, 100_000);
      for (const { c, r } of ranges) {
        expect(r.firstOffset).toBe(expectedFirst);
        const own = messages(25, { tag: `c${c}`, key: (i) => `tenant-${(c + i) % 4}` }).filter((m) => partitionForKey(m.key, 3) === p);
        expect(r.lastOffset - r.firstOffset + 1).toBe(own.length);
        expect(stored.slice(r.firstOffset, r.lastOffset + 1).map((m) => m.value.toString())).toEqual(own.map((m) => m.value.toString()));
        expectedFirst = r.lastOffset + 1;
      }
      expect(stored.length).toBe(expectedFirst);
    }
  });

  it('shares one fsync between concurrent sends (group commit)', async () => {
    const log = openLog({ partitions: 1, fsync: 'always' });
    await log.admin().ensureTopic('t', 1);
    const fh = await open(join(tmp.dir, 'probe'), 'w');
    const proto = Object.getPrototypeOf(fh) as { datasync: () => Promise<void> };
    await fh.close();
    const datasync = vi.spyOn(proto, 'datasync');
    const producer = log.producer();
    await Promise.all(Array.from({ length: 50 }, (_, i) => producer.send('t', messages(10, { tag: `s${i}` }))));
    expect(datasync.mock.calls.length).toBeGreaterThan(0);
    expect(datasync.mock.calls.length).toBeLessThan(10);
    datasync.mockClear();
    await producer.send('t', messages(1));
    expect(datasync).toHaveBeenCalledTimes(1);
  });

  it('with fsync always, readers see records only once they are fsync’d', async () => {
    const log = openLog({ partitions: 1, fsync: 'always' });
    await log.admin().ensureTopic('t', 1);
    const fh = await open(join(tmp.dir, 'probe'), 'w');
    const proto = Object.getPrototypeOf(fh) as { datasync: () => Promise<void> };
    await fh.close();
    const real = proto.datasync;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let entered = false;
    vi.spyOn(proto, 'datasync').mockImplementation(async function (this: unknown) {
      entered = true;
      await gate;
      return real.call(this);
    });
    let resolved = false;
    const sending = log
      .producer()
      .send('t', messages(3))
      .then((r) => ((resolved = true), r));
    while (!entered) await new Promise((r) => setTimeout(r, 1));
    // Written to the file, not yet fsync'd: not acknowledged, not readable.
    expect(resolved).toBe(false);
    expect(await log.admin().partitions('t')).toEqual([{ partition: 0, low: 0, high: 0 }]);
    expect(await log.admin().read('t', 0, 0, 10)).toEqual([]);
    release();
    expect(await sending).toEqual([{ partition: 0, firstOffset: 0, lastOffset: 2 }]);
    expect(await log.admin().partitions('t')).toEqual([{ partition: 0, low: 0, high: 3 }]);
  });

  it('refuses sends beyond the pending-send bound with LogUnavailableError, then recovers', async () => {
    const log = openLog({ maxPendingSends: 3 });
    await log.ready();
    const producer = log.producer();
    const outcomes = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => producer.send('t', messages(5, { tag: `b${i}` }))));
    const rejected = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(3);
    expect(rejected).toHaveLength(7);
    for (const r of rejected) expect(r.reason).toBeInstanceOf(LogUnavailableError);
    expect(log.stats().rejectedSends).toBe(7);
    // The budget is released as sends finish: nothing is left queued.
    const after = await producer.send('t', messages(5));
    expect(after.reduce((n, r) => n + r.lastOffset - r.firstOffset + 1, 0)).toBe(5);
  });

  it('refuses sends beyond the pending-bytes bound, and a send that can never fit with RangeError', async () => {
    const log = openLog({ maxPendingBytes: 4000 });
    const producer = log.producer();
    const big = messages(10, { valueBytes: 200 }); // ~10 × 290 bytes encoded
    const outcomes = await Promise.allSettled([producer.send('t', big), producer.send('t', big)]);
    expect(outcomes[0]!.status).toBe('fulfilled');
    expect(outcomes[1]).toMatchObject({ status: 'rejected', reason: expect.any(LogUnavailableError) });
    await expect(producer.send('t', messages(20, { valueBytes: 200 }))).rejects.toBeInstanceOf(RangeError);
  });

  it('rolls segments at segmentBytes and seeks correctly through the sparse index after reopening', async () => {
    const log = openLog({ partitions: 1, segmentBytes: 128 * 1024 });
    const producer = log.producer();
    for (let b = 0; b < 40; b++) await producer.send('t', messages(100, { tag: `b${b}`, valueBytes: 300 }));
    await log.close();
    const pdir = join(tmp.dir, 'topics', 't', '0');
    const segs = await segmentFiles(pdir);
    expect(segs.length).toBeGreaterThan(10);
    expect(segs[0]).toBe(`${'0'.repeat(20)}.log`);
    for (const s of segs) expect((await stat(join(pdir, s))).size).toBeLessThanOrEqual(128 * 1024);
    // Sealed segments leave a sparse index behind.
    expect((await readdir(pdir)).filter((n) => n.endsWith('.index')).length).toBe(segs.length - 1);

    const again = openLog({ partitions: 1, segmentBytes: 128 * 1024 });
    const admin = again.admin();
    for (const offset of [0, 1, 799, 1234, 2999, 3999]) {
      const [m] = await admin.read('t', 0, offset, 1);
      expect(m?.offset).toBe(offset);
      expect(m?.value.toString()).toMatch(new RegExp(`^b${Math.floor(offset / 100)}-${offset % 100}\\.`));
    }
    // One read crosses segment boundaries without gaps.
    const all = await admin.read('t', 0, 0, 10_000);
    expect(all.map((m) => m.offset)).toEqual(Array.from({ length: 4000 }, (_, i) => i));
  });

  it('retention deletes whole oldest segments and advances the low offset', async () => {
    const log = openLog({ partitions: 1, segmentBytes: 8 * 1024, retentionBytes: 32 * 1024 });
    const producer = log.producer();
    for (let b = 0; b < 40; b++) await producer.send('t', messages(10, { tag: `b${b}`, valueBytes: 100 }));
    const pdir = join(tmp.dir, 'topics', 't', '0');
    const segs = await segmentFiles(pdir);
    const [p] = await log.admin().partitions('t');
    expect(p!.high).toBe(400);
    expect(p!.low).toBeGreaterThan(0);
    expect(segs[0]).toBe(`${String(p!.low).padStart(20, '0')}.log`);
    let total = 0;
    for (const s of segs) total += (await stat(join(pdir, s))).size;
    expect(total).toBeLessThanOrEqual(32 * 1024 + 8 * 1024);
    // Reading from a deleted offset starts at the low offset instead of failing.
    const got = await log.admin().read('t', 0, 0, 3);
    expect(got.map((m) => m.offset)).toEqual([p!.low, p!.low + 1, p!.low + 2]);
  });

  it('fsync interval and never still persist appends across a clean close', async () => {
    for (const fsync of ['interval', 'never'] as const) {
      const log = openLog({ fsync, fsyncIntervalMs: 20, partitions: 1 });
      await log.producer().send(fsync, messages(5));
      await log.close();
      const again = openLog({ partitions: 1 });
      expect((await again.admin().read(fsync, 0, 0, 10)).length).toBe(5);
      await again.close();
    }
  });

  it('close is idempotent, drains in-flight sends and refuses new ones', async () => {
    const log = openLog();
    const producer = log.producer();
    const inflight = producer.send('t', messages(50));
    const closing = log.close();
    expect(log.close()).toBe(closing);
    await closing;
    await expect(inflight).resolves.toBeDefined();
    await expect(producer.send('t', messages(1))).rejects.toBeInstanceOf(LogUnavailableError);
    expect(() => log.producer()).toThrow(LogUnavailableError);
    await expect(log.close()).resolves.toBeUndefined();
  });

  it('one process owns a directory: a second writer is refused, a dead owner’s lock is taken over', async () => {
    const log = openLog();
    await log.ready();
    const second = openLog();
    await expect(second.ready()).rejects.toBeInstanceOf(LogUnavailableError);
    await expect(second.producer().send('t', messages(1))).rejects.toBeInstanceOf(LogUnavailableError);
    await log.close();
    // A crashed owner leaves LOCK behind with a pid that no longer runs.
    const { writeFile } = await import('node:fs/promises');
    await writeFile(join(tmp.dir, 'LOCK'), '999999999\n');
    const third = openLog();
    await expect(third.ready()).resolves.toBeUndefined();
  });

  it('rejects names that would escape the log directory', async () => {
    const log = openLog();
    await expect(log.producer().send('../evil', messages(1))).rejects.toBeInstanceOf(RangeError);
    await expect(log.admin().ensureTopic('a/b', 1)).rejects.toBeInstanceOf(RangeError);
    expect(() => log.consumer({ group: '..', topic: 't', maxBatchMessages: 1, maxBatchBytes: 1, maxWaitMs: 0 })).toThrow(RangeError);
  });
});
