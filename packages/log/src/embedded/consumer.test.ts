import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ConsumerOptions, LogConsumer, MessageBatch } from '../types.ts';
import { createEmbeddedLog, type ConsumerErrorInfo, type EmbeddedLog, type EmbeddedLogOptions } from './log.ts';
import { makeTempDir, messages, waitFor } from '../../test/embedded-helpers.ts';

const batchShape = (b: MessageBatch) => ({ partition: b.partition, first: b.firstOffset, last: b.lastOffset, offsets: b.messages.map((m) => m.offset) });

describe('embedded log: consumer groups', () => {
  let tmp: Awaited<ReturnType<typeof makeTempDir>>;
  const opened: EmbeddedLog[] = [];
  const openLog = (o: Partial<EmbeddedLogOptions> = {}): EmbeddedLog => {
    const log = createEmbeddedLog({ dir: tmp.dir, partitions: 1, retryInitialMs: 5, retryMaxMs: 40, ...o });
    opened.push(log);
    return log;
  };
  const opts = (o: Partial<ConsumerOptions> = {}): ConsumerOptions => ({
    group: 'loader',
    topic: 't',
    maxBatchMessages: 10,
    maxBatchBytes: 1 << 20,
    maxWaitMs: 0,
    ...o,
  });

  beforeEach(async () => {
    tmp = await makeTempDir();
  });
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((l) => l.close()));
    await tmp.cleanup();
  });

  it('commits after the handler and resumes from the committed offset after close and reopen', async () => {
    const log = openLog();
    await log.producer().send('t', messages(30, { key: () => 'k' }));
    const c: LogConsumer = log.consumer(opts());
    const first: MessageBatch[] = [];
    const run = c.run(async (b) => {
      first.push(b);
      // Ask to stop from inside the handler: the in-flight batch still completes and commits.
      void c.close();
    });
    await run;
    expect(first.map(batchShape)).toEqual([{ partition: 0, first: 0, last: 9, offsets: [...Array(10).keys()] }]);
    expect(await log.admin().committed('loader', 't')).toEqual([{ partition: 0, offset: 10 }]);
    expect(await log.admin().committed('other-group', 't')).toEqual([{ partition: 0, offset: -1 }]);
    await log.close();

    const again = openLog();
    const c2 = again.consumer(opts());
    const seen: number[] = [];
    const run2 = c2.run(async (b) => {
      seen.push(...b.messages.map((m) => m.offset));
    });
    await waitFor(() => seen.length >= 20);
    await c2.close();
    await run2;
    expect(seen).toEqual(Array.from({ length: 20 }, (_, i) => 10 + i));
    expect(await again.admin().committed('loader', 't')).toEqual([{ partition: 0, offset: 30 }]);
  });

  it('retries a throwing handler with the same batch boundaries, even as more data arrives', async () => {
    const errors: ConsumerErrorInfo[] = [];
    const log = openLog({ onConsumerError: (_e, i) => errors.push(i) });
    const producer = log.producer();
    await producer.send('t', messages(4, { key: () => 'k' }));
    const calls: MessageBatch[] = [];
    const committedDuringFailures: number[] = [];
    const c = log.consumer(opts({ maxBatchMessages: 100 }));
    const run = c.run(async (b) => {
      calls.push(b);
      if (calls.length <= 3) {
        // New data during the retries must not be folded into the failing batch.
        await producer.send('t', messages(2, { key: () => 'k', tag: `extra${calls.length}` }));
        committedDuringFailures.push((await log.admin().committed('loader', 't'))[0]!.offset);
        throw new Error(`insert failed ${calls.length}`);
      }
    });
    await waitFor(() => calls.length >= 5);
    await c.close();
    await run;
    const first4 = { partition: 0, first: 0, last: 3, offsets: [0, 1, 2, 3] };
    expect(calls.slice(0, 4).map(batchShape)).toEqual([first4, first4, first4, first4]);
    expect(calls[3]!.messages.map((m) => m.value.toString())).toEqual(['m-0', 'm-1', 'm-2', 'm-3']);
    expect(committedDuringFailures).toEqual([-1, -1, -1]);
    // After success the next batch picks up exactly where the committed one ended.
    expect(batchShape(calls[4]!)).toMatchObject({ first: 4, last: 9 });
    expect(errors.map((e) => [e.phase, e.attempt])).toEqual([
      ['handler', 0],
      ['handler', 1],
      ['handler', 2],
    ]);
  });

  it('bounds batches by maxBatchMessages and maxBatchBytes, and delivers an oversize message alone', async () => {
    const log = openLog();
    const producer = log.producer();
    await producer.send('t', messages(7, { key: () => 'k', valueBytes: 100 }));
    await producer.send('t', [{ key: 'k', value: Buffer.alloc(500, 1) }]);
    await producer.send('t', messages(3, { key: () => 'k', valueBytes: 100, tag: 'z' }));
    const sizes: number[][] = [];
    const c = log.consumer(opts({ maxBatchMessages: 3, maxBatchBytes: 250 }));
    const run = c.run(async (b) => {
      sizes.push(b.messages.map((m) => m.value.length));
    });
    await waitFor(() => sizes.flat().length >= 11);
    await c.close();
    await run;
    expect(sizes).toEqual([[100, 100], [100, 100], [100, 100], [100], [500], [100, 100], [100]]);
  });

  it('holds a small batch for maxWaitMs', async () => {
    const log = openLog({ pollIntervalMs: 1000 });
    const producer = log.producer();
    const got: Array<{ n: number; at: number }> = [];
    const c = log.consumer(opts({ maxBatchMessages: 50, maxWaitMs: 300 }));
    const run = c.run(async (b) => {
      got.push({ n: b.messages.length, at: performance.now() });
    });
    await log.admin().ensureTopic('t', 1);
    const t0 = performance.now();
    await producer.send('t', messages(3, { key: () => 'k' }));
    await producer.send('t', messages(2, { key: () => 'k' }));
    await waitFor(() => got.length >= 1);
    expect(got[0]!.n).toBe(5);
    // A lower bound only: a busy machine can make it later, never earlier.
    expect(got[0]!.at - t0).toBeGreaterThanOrEqual(280);
    await c.close();
    await run;
  });

  it('hands over a full batch at once, without waiting out maxWaitMs', async () => {
    const log = openLog({ pollIntervalMs: 60_000 });
    const got: number[] = [];
    // maxWaitMs far beyond the wait below: a batch that arrives at all arrived because it was full.
    const c = log.consumer(opts({ maxBatchMessages: 50, maxWaitMs: 120_000 }));
    const run = c.run(async (b) => {
      got.push(b.messages.length);
    });
    await log.admin().ensureTopic('t', 1);
    await log.producer().send('t', messages(50, { key: () => 'k' }));
    await waitFor(() => got.length >= 1, 15_000);
    expect(got).toEqual([50]);
    await c.close();
    await run;
  });

  it('wakes on an in-process append instead of waiting for the poll', async () => {
    const log = openLog({ pollIntervalMs: 60_000 });
    const c = log.consumer(opts());
    let at = 0;
    const run = c.run(async () => {
      at = performance.now();
    });
    await log.admin().ensureTopic('t', 1);
    await log.producer().send('t', messages(1));
    // The poll is a minute away: delivery well inside that bound can only be the wake-up.
    await waitFor(() => at > 0, 15_000);
    await c.close();
    await run;
  });

  it('sees appends made by another process through the polling fallback', async () => {
    const writer = openLog();
    await writer.admin().ensureTopic('t', 1);
    // A read-only instance stands in for another process: it gets no in-process wake-ups.
    const reader = openLog({ readOnly: true, pollIntervalMs: 20 });
    const c = reader.consumer(opts({ group: 'tail' }));
    const seen: string[] = [];
    const run = c.run(async (b) => {
      seen.push(...b.messages.map((m) => m.value.toString()));
    });
    await writer.producer().send('t', messages(3, { key: () => 'k', tag: 'x' }));
    await waitFor(() => seen.length >= 3, 3000);
    expect(seen).toEqual(['x-0', 'x-1', 'x-2']);
    await c.close();
    await run;
    // The read-only consumer kept its offsets to itself.
    expect((await readdir(join(tmp.dir, 'groups'))).filter((n) => n.startsWith('tail'))).toEqual([]);
  });

  it('consumes every partition and commits each one separately', async () => {
    const log = openLog({ partitions: 3 });
    const ranges = await log.producer().send('t', messages(60, { key: (i) => `tenant-${i}` }));
    expect(ranges.length).toBe(3);
    const perPartition = new Map<number, number[]>();
    const c = log.consumer(opts({ maxBatchMessages: 7 }));
    const run = c.run(async (b) => {
      perPartition.set(b.partition, [...(perPartition.get(b.partition) ?? []), ...b.messages.map((m) => m.offset)]);
    });
    await waitFor(() => [...perPartition.values()].flat().length >= 60);
    await c.close();
    await run;
    for (const r of ranges) {
      expect(perPartition.get(r.partition)).toEqual(Array.from({ length: r.lastOffset + 1 }, (_, i) => i));
    }
    expect(await log.admin().committed('loader', 't')).toEqual(ranges.map((r) => ({ partition: r.partition, offset: r.lastOffset + 1 })));
  });

  it('close is idempotent, interrupts a retry backoff and refuses a second concurrent consumer of a group', async () => {
    const log = openLog({ retryInitialMs: 60_000, retryMaxMs: 60_000 });
    await log.producer().send('t', messages(2));
    const c = log.consumer(opts());
    let calls = 0;
    const run = c.run(async () => {
      calls++;
      throw new Error('always fails');
    });
    await waitFor(() => calls === 1);
    const twin = log.consumer(opts());
    await expect(twin.run(async () => undefined)).rejects.toThrow(/already has a running consumer/);
    const t0 = performance.now();
    const closing = c.close();
    expect(c.close()).toBe(closing);
    await closing;
    await run;
    // The backoff is a minute: a close that returns well inside it interrupted the wait.
    expect(performance.now() - t0).toBeLessThan(15_000);
    expect(calls).toBe(1);
    expect(await log.admin().committed('loader', 't')).toEqual([{ partition: 0, offset: -1 }]);
    await expect(c.run(async () => undefined)).rejects.toThrow(/already running/);
  });

  it('a new group starts at the retained low offset when retention already deleted older data', async () => {
    const log = openLog({ segmentBytes: 2048, retentionBytes: 4096 });
    const producer = log.producer();
    for (let i = 0; i < 20; i++) await producer.send('t', messages(10, { key: () => 'k', valueBytes: 60 }));
    const low = (await log.admin().partitions('t'))[0]!.low;
    expect(low).toBeGreaterThan(0);
    const c = log.consumer(opts({ group: 'late', maxBatchMessages: 1000 }));
    let firstOffset = -1;
    const run = c.run(async (b) => {
      firstOffset = b.firstOffset;
      void c.close();
    });
    await run;
    expect(firstOffset).toBe(low);
  });

  it('retention never deletes what a group that reads the topic has not read yet, and resumes once it has', async () => {
    const log = openLog({ segmentBytes: 2048, retentionBytes: 4096 });
    const producer = log.producer();
    await producer.send('t', messages(1, { key: () => 'k' }));
    const c = log.consumer(opts());
    await c.run(async () => {
      void c.close();
    });
    expect(await log.admin().committed('loader', 't')).toEqual([{ partition: 0, offset: 1 }]);
    // The loader is stopped (ClickHouse down, say) while far more than the size limit arrives.
    for (let i = 0; i < 20; i++) await producer.send('t', messages(10, { key: () => 'k', valueBytes: 60 }));
    expect((await log.admin().partitions('t'))[0]!.low).toBe(0);
    expect(log.stats().retentionHeld).toBeGreaterThan(0);

    // It comes back, reads everything from where it stopped, and retention catches up afterwards.
    const c2 = log.consumer(opts({ maxBatchMessages: 1000 }));
    const seen: number[] = [];
    const run2 = c2.run(async (b) => {
      seen.push(...b.messages.map((m) => m.offset));
    });
    await waitFor(() => seen.length >= 200);
    await c2.close();
    await run2;
    expect(seen[0]).toBe(1);
    expect(log.stats().offsetResets).toBe(0);
    await producer.send('t', messages(10, { key: () => 'k', valueBytes: 60 }));
    expect((await log.admin().partitions('t'))[0]!.low).toBeGreaterThan(1);
  });

  it('a group committed before a restart protects its data from the first append after reopening', async () => {
    const log = openLog({ segmentBytes: 2048, retentionBytes: 4096 });
    await log.producer().send('t', messages(1, { key: () => 'k' }));
    const c = log.consumer(opts());
    await c.run(async () => {
      void c.close();
    });
    await log.close();
    const again = openLog({ segmentBytes: 2048, retentionBytes: 4096 });
    for (let i = 0; i < 20; i++) await again.producer().send('t', messages(10, { key: () => 'k', valueBytes: 60 }));
    expect((await again.admin().partitions('t'))[0]!.low).toBe(0);
  });
});
