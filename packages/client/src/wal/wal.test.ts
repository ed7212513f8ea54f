import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { IngestClientError } from '../errors.ts';
import { checkRecord, segmentFileName } from './format.ts';
import { Wal, WAL_FILES, type WalItem } from './wal.ts';

const open: Wal[] = [];
afterEach(async () => {
  for (const w of open.splice(0)) await w.close();
});

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(path.join(tmpdir(), 'wal-test-'));
  dirs.push(d);
  return d;
}

async function openWal(dir: string, segmentBytes = 4096): Promise<Wal> {
  const w = await Wal.open({ dir, segmentBytes, fsync: 'perBatch' });
  open.push(w);
  return w;
}

async function closeWal(w: Wal): Promise<void> {
  await w.close();
  open.splice(open.indexOf(w), 1);
}

function items(from: number, n: number): WalItem[] {
  return Array.from({ length: n }, (_, i) => ({ payload: Buffer.from(JSON.stringify({ n: from + i, pad: 'p'.repeat(40) })), appendedAt: 1_000 + from + i }));
}

async function readAll(w: Wal): Promise<number[]> {
  const out: number[] = [];
  for (;;) {
    const r = await w.read(100, 1 << 20);
    if (r.records.length === 0) return out;
    for (const x of r.records) out.push((JSON.parse(x.payload.toString()) as { n: number }).n);
  }
}

async function segments(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.endsWith('.wal')).sort();
}

describe('Wal', () => {
  it('appends across segments and reads everything back in order', async () => {
    const dir = await tempDir();
    const w = await openWal(dir);
    const r = await w.append(items(0, 200));
    expect(r).toEqual({ first: 0, last: 199 });
    expect((await segments(dir)).length).toBeGreaterThan(2);
    expect(await readAll(w)).toEqual(Array.from({ length: 200 }, (_, i) => i));
    expect(w.hasUnread).toBe(false);
    expect(w.nextOffset).toBe(200);
  });

  it('resumes after the persisted checkpoint and deletes segments wholly below it', async () => {
    const dir = await tempDir();
    const w = await openWal(dir);
    await w.append(items(0, 200));
    const before = (await segments(dir)).length;
    w.ack(149);
    await w.persistCheckpoint();
    expect((await segments(dir)).length).toBeLessThan(before);
    await closeWal(w);

    const w2 = await openWal(dir);
    expect(w2.ackedOffset).toBe(149);
    expect(w2.recovery.unackedRecords).toBe(50);
    expect(w2.recovery.checkpoint).toBe('ok');
    expect(await readAll(w2)).toEqual(Array.from({ length: 50 }, (_, i) => 150 + i));
    // Offsets continue; they are never reused.
    expect((await w2.append(items(200, 1))).first).toBe(200);
  });

  it('cuts a torn last record back, counts it, and keeps the records before it', async () => {
    const dir = await tempDir();
    const w = await openWal(dir, 1 << 20);
    await w.append(items(0, 20));
    await closeWal(w);
    const segs = await segments(dir);
    const last = path.join(dir, segs[segs.length - 1]!);
    const size = (await stat(last)).size;
    await truncate(last, size - 5);

    const w2 = await openWal(dir, 1 << 20);
    expect(w2.recovery.corruptRecords).toBe(1);
    expect(w2.recovery.removedBytes).toBeGreaterThan(0);
    expect(await readAll(w2)).toEqual(Array.from({ length: 19 }, (_, i) => i));
  });

  it('cuts out a record with a flipped byte mid-segment, keeps the records after it, quarantines the original', async () => {
    const dir = await tempDir();
    const w = await openWal(dir, 1 << 20);
    await w.append(items(0, 20));
    await closeWal(w);
    const file = path.join(dir, segmentFileName(0));
    const buf = await readFile(file);
    // Find record 7 and flip a payload byte.
    let pos = 0;
    for (let i = 0; i < 7; i++) {
      const c = checkRecord(buf, pos, buf.length, 0, 1e9);
      if (c.kind !== 'ok') throw new Error('bad fixture');
      pos += c.record.size;
    }
    buf[pos + 40]! ^= 0x20;
    await writeFile(file, buf);

    const w2 = await openWal(dir, 1 << 20);
    expect(w2.recovery.corruptRecords).toBe(1);
    expect(w2.recovery.quarantined).toHaveLength(1);
    expect(await readdir(path.join(dir, WAL_FILES.quarantine))).toHaveLength(1);
    expect(await readAll(w2)).toEqual([0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
    await closeWal(w2);
    // The rewrite is durable: a second start finds nothing to repair.
    const w3 = await openWal(dir, 1 << 20);
    expect(w3.recovery.corruptRecords).toBe(0);
    expect(w3.recovery.unackedRecords).toBe(19);
  });

  it('does not count damage below the checkpoint (already delivered)', async () => {
    const dir = await tempDir();
    const w = await openWal(dir, 1 << 20);
    await w.append(items(0, 20));
    w.ack(10);
    await closeWal(w);
    const file = path.join(dir, segmentFileName(0));
    const buf = await readFile(file);
    buf[60]! ^= 0x20; // inside record 0 or 1
    await writeFile(file, buf);
    const w2 = await openWal(dir, 1 << 20);
    expect(w2.recovery.corruptRecords).toBe(0);
    expect(await readAll(w2)).toEqual(Array.from({ length: 9 }, (_, i) => 11 + i));
  });

  it('starts on a segment of garbage and a corrupt checkpoint without throwing, redelivering what is readable', async () => {
    const dir = await tempDir();
    const w = await openWal(dir, 1 << 20);
    await w.append(items(0, 5));
    w.ack(4);
    await closeWal(w);
    await writeFile(path.join(dir, WAL_FILES.checkpoint), Buffer.from('not a checkpoint'));
    await writeFile(path.join(dir, segmentFileName(1000)), Buffer.alloc(3000, 0xab));

    const w2 = await openWal(dir, 1 << 20);
    expect(w2.recovery.checkpoint).toBe('corrupt');
    // Without a checkpoint everything readable is sent again (the edge deduplicates by id).
    expect(await readAll(w2)).toEqual([0, 1, 2, 3, 4]);
    expect(w2.recovery.corruptRecords).toBeGreaterThanOrEqual(1);
    expect(w2.nextOffset).toBeGreaterThanOrEqual(1000);
  });

  it('moves an unreadable checkpoint (here: a directory) aside instead of failing every start', async () => {
    const dir = await tempDir();
    const w = await openWal(dir, 1 << 20);
    await w.append(items(0, 3));
    await closeWal(w);
    await rm(path.join(dir, WAL_FILES.checkpoint));
    await mkdir(path.join(dir, WAL_FILES.checkpoint));
    const w2 = await openWal(dir, 1 << 20);
    expect(w2.recovery.checkpoint).toBe('corrupt');
    expect(await readAll(w2)).toEqual([0, 1, 2]);
    await closeWal(w2);
    const w3 = await openWal(dir, 1 << 20);
    expect(w3.recovery.checkpoint).toBe('ok');
  });

  it('keeps a second opener out while the first lives, and takes over a dead owner\'s lock', async () => {
    const dir = await tempDir();
    const w = await openWal(dir);
    const err = await Wal.open({ dir, segmentBytes: 4096, fsync: 'perBatch' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IngestClientError);
    expect((err as IngestClientError).code).toBe('CLIENT_ERR_WAL_LOCKED');
    await closeWal(w);

    // A pid that has exited: a child we ran to completion.
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
    await writeFile(path.join(dir, WAL_FILES.lock), dead);
    const w2 = await openWal(dir);
    expect(w2.recovery.staleLock).toBe(true);
  });

  it('dropOldest deletes the oldest unacked segment and says how many of its records were never read', async () => {
    const dir = await tempDir();
    const w = await openWal(dir, 2048);
    await w.append(items(0, 100));
    const first = await w.read(5, 1 << 20);
    expect(first.records).toHaveLength(5);
    const segsBefore = w.segmentCount;
    const d = await w.dropOldest();
    expect(d).not.toBeNull();
    expect(w.segmentCount).toBe(segsBefore - 1);
    // The first segment held more than the 5 records read; the rest of it was never read.
    const rest = await readAll(w);
    expect(d!.unread + 5 + rest.length).toBe(100);
    expect(rest[0]).toBe(5 + d!.unread);
  });

  it('usedBytes charges only segments holding unacked records; reclaim frees the rest', async () => {
    const dir = await tempDir();
    const w = await openWal(dir, 2048);
    await w.append(items(0, 100));
    const disk = w.diskBytes;
    expect(w.usedBytes).toBe(disk);
    w.ack(99);
    expect(w.usedBytes).toBe(0);
    const freed = await w.reclaim();
    expect(freed).toBe(disk);
    expect(w.diskBytes).toBe(0);
  });

  it('close is idempotent and later calls fail with CLIENT_ERR_CLOSED', async () => {
    const dir = await tempDir();
    const w = await openWal(dir);
    await closeWal(w);
    await w.close();
    await expect(w.append(items(0, 1))).rejects.toMatchObject({ code: 'CLIENT_ERR_CLOSED' });
  });
});
