import { open, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LogUnavailableError } from '../types.ts';
import { createEmbeddedLog, type EmbeddedLog, type EmbeddedLogOptions, type TornTailInfo } from './log.ts';
import { makeTempDir, messages, waitFor } from '../../test/embedded-helpers.ts';

/**
 * Failed writes and fsyncs, injected by wrapping FileHandle methods (the seam every file write and
 * fsync of the log goes through). The fault stays on until the test lifts it, like a full disk.
 */
describe('embedded log: failed appends', () => {
  let tmp: Awaited<ReturnType<typeof makeTempDir>>;
  const opened: EmbeddedLog[] = [];
  const openLog = (o: Partial<EmbeddedLogOptions> = {}): EmbeddedLog => {
    const log = createEmbeddedLog({ dir: tmp.dir, partitions: 1, retryInitialMs: 10, retryMaxMs: 40, ...o });
    opened.push(log);
    return log;
  };
  const segmentPath = join('topics', 't', '0', `${'0'.repeat(20)}.log`);

  beforeEach(async () => {
    tmp = await makeTempDir();
  });
  afterEach(async () => {
    vi.restoreAllMocks();
    await Promise.all(opened.splice(0).map((l) => l.close()));
    await tmp.cleanup();
  });

  /** Makes `method` of every FileHandle fail with `code` while the returned switch is on. */
  async function inject(method: 'datasync' | 'write' | 'truncate', code: string): Promise<{ on: boolean; calls: number }> {
    const fh = await open(join(tmp.dir, 'proto'), 'w');
    const proto = Object.getPrototypeOf(fh) as Record<string, (...a: unknown[]) => Promise<unknown>>;
    await fh.close();
    const real = proto[method]!;
    const fault = { on: true, calls: 0 };
    vi.spyOn(proto, method).mockImplementation(async function (this: FileHandle, ...args: unknown[]) {
      if (!fault.on) return real.apply(this, args);
      fault.calls++;
      throw Object.assign(new Error(`${code}: injected ${method} failure`), { code });
    });
    return fault;
  }

  /** Every value in partition 0, in offset order. */
  async function values(log: EmbeddedLog): Promise<Array<[number, string]>> {
    return (await log.admin().read('t', 0, 0, 10_000)).map((m) => [m.offset, m.value.toString()]);
  }

  it('fsync=always: after a failed fsync nothing is acknowledged and appends are refused until recovery proves the disk again', async () => {
    const log = openLog({ fsync: 'always' });
    const producer = log.producer();
    await producer.send('t', messages(5, { tag: 'before', key: () => 'k' }));
    expect(log.health()).toEqual({ ok: true, failing: [] });

    const fault = await inject('datasync', 'EIO');
    await expect(producer.send('t', messages(3, { tag: 'during', key: () => 'k' }))).rejects.toBeInstanceOf(LogUnavailableError);
    const health = log.health();
    expect(health.ok).toBe(false);
    expect(health.failing).toEqual([{ topic: 't', partition: 0, error: expect.stringMatching(/^t\/0 refuses appends: fsync failed: EIO/), since: expect.any(Number) }]);
    // Refused at once while failed; recovery keeps failing (its fsync fails too) and stays failed.
    const callsBefore = fault.calls;
    await expect(producer.send('t', messages(1, { tag: 'refused', key: () => 'k' }))).rejects.toThrow(/refuses appends: fsync failed/);
    await waitFor(() => fault.calls >= callsBefore + 2);
    expect(log.health().ok).toBe(false);
    // Readers never saw the unacknowledged records.
    expect((await values(log)).map(([, v]) => v)).toEqual(['before-0', 'before-1', 'before-2', 'before-3', 'before-4']);

    fault.on = false;
    await waitFor(() => log.health().ok, 5000);
    const [range] = await producer.send('t', messages(2, { tag: 'after', key: () => 'k' }));
    // The records of the failed send were rewritten and fsync'd by recovery: they keep their offsets
    // (at-least-once: the producer was told 503 and retries; the store deduplicates on entry id), and
    // no offset a reader may have seen is handed out twice.
    expect(range).toEqual({ partition: 0, firstOffset: 8, lastOffset: 9 });
    await log.close();

    const torn: TornTailInfo[] = [];
    const again = openLog({ onTornTail: (i) => torn.push(i) });
    expect(await values(again)).toEqual([
      ...Array.from({ length: 5 }, (_, i): [number, string] => [i, `before-${i}`]),
      ...Array.from({ length: 3 }, (_, i): [number, string] => [5 + i, `during-${i}`]),
      [8, 'after-0'],
      [9, 'after-1'],
    ]);
    expect(torn).toEqual([]);
  });

  it('a failed write (disk full) is taken back, refused until a probe write succeeds, then appends resume', async () => {
    const log = openLog({ fsync: 'always' });
    const producer = log.producer();
    await producer.send('t', messages(4, { tag: 'before', key: () => 'k' }));
    const sizeBefore = (await stat(join(tmp.dir, segmentPath))).size;

    const fault = await inject('write', 'ENOSPC');
    await expect(producer.send('t', messages(3, { tag: 'full', key: () => 'k' }))).rejects.toThrow(/refuses appends: append failed: ENOSPC/);
    expect(log.health().failing).toMatchObject([{ topic: 't', partition: 0, error: expect.stringMatching(/ENOSPC/) }]);
    // Recovery attempts probe the disk with a real write; while that fails the partition stays out.
    const callsBefore = fault.calls;
    await waitFor(() => fault.calls >= callsBefore + 2);
    expect(log.health().ok).toBe(false);
    expect((await stat(join(tmp.dir, segmentPath))).size).toBe(sizeBefore);

    fault.on = false;
    await waitFor(() => log.health().ok, 5000);
    // Nothing of the failed send was written, so its offsets were never seen and are used now.
    expect(await producer.send('t', messages(2, { tag: 'after', key: () => 'k' }))).toEqual([{ partition: 0, firstOffset: 4, lastOffset: 5 }]);
    expect((await values(log)).map(([, v]) => v)).toEqual(['before-0', 'before-1', 'before-2', 'before-3', 'after-0', 'after-1']);
  });

  it('a half-written append whose take-back also failed is cut by recovery before appends resume', async () => {
    const log = openLog({ fsync: 'always' });
    const producer = log.producer();
    await producer.send('t', messages(4, { tag: 'before', key: () => 'k' }));
    const fh = await open(join(tmp.dir, 'proto'), 'w');
    const proto = Object.getPrototypeOf(fh) as { write: (...a: unknown[]) => Promise<{ bytesWritten: number }> };
    await fh.close();
    const realWrite = proto.write;
    let fault = true;
    // Half of the append reaches the file, then the disk fills; and the truncate that would take the
    // half back fails too.
    vi.spyOn(proto, 'write').mockImplementation(async function (this: FileHandle, ...args: unknown[]) {
      if (!fault) return realWrite.apply(this, args);
      const [buf, offset, length] = args as [Buffer, number, number];
      if (length > 1) await realWrite.call(this, buf, offset, Math.floor(length / 2), null);
      throw Object.assign(new Error('ENOSPC: injected'), { code: 'ENOSPC' });
    });
    const truncate = await inject('truncate', 'EIO');
    await expect(producer.send('t', messages(3, { tag: 'half', key: () => 'k' }))).rejects.toThrow(/could not be taken back: ENOSPC/);
    expect(log.health().ok).toBe(false);
    fault = false;
    truncate.on = false;
    await waitFor(() => log.health().ok, 5000);
    await producer.send('t', messages(2, { tag: 'after', key: () => 'k' }));
    await log.close();
    const torn: TornTailInfo[] = [];
    const again = openLog({ onTornTail: (i) => torn.push(i) });
    expect((await values(again)).map(([, v]) => v)).toEqual(['before-0', 'before-1', 'before-2', 'before-3', 'after-0', 'after-1']);
    // No half record left between them for readers to step over.
    expect(torn).toEqual([]);
    expect(again.stats().corruptRecords).toBe(0);
  });

  it('fsync=interval: a failed background fsync takes the partition out until the acknowledged records are rewritten and synced', async () => {
    const log = openLog({ fsync: 'interval', fsyncIntervalMs: 10 });
    const producer = log.producer();
    const fault = await inject('datasync', 'EIO');
    // Acknowledged before it is on disk: that is what 'interval' means.
    await producer.send('t', messages(3, { tag: 'acked', key: () => 'k' }));
    await waitFor(() => !log.health().ok);
    await expect(producer.send('t', messages(1, { key: () => 'k' }))).rejects.toBeInstanceOf(LogUnavailableError);
    fault.on = false;
    await waitFor(() => log.health().ok, 5000);
    await producer.send('t', messages(1, { tag: 'after', key: () => 'k' }));
    await log.close();
    const again = openLog();
    expect(await values(again)).toEqual([
      [0, 'acked-0'],
      [1, 'acked-1'],
      [2, 'acked-2'],
      [3, 'after-0'],
    ]);
  });
});
