import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { waitUntil } from '@ingest/testkit/wait';
import { writeChunkCapBytes } from './buffer.ts';
import { IngestClient } from './client.ts';
import type { IngestClientOptions } from './options.ts';
import { retryDelay } from './sender.ts';
import { interpretResponse } from './transport.ts';
import { IngestClientError } from './errors.ts';
import { encodeEntry } from './entry.ts';
import { recordSize } from './wal/format.ts';
import { FakeTransport } from '../test/fake-transport.ts';

const clients: IngestClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close({ flushTimeoutMs: 100 });
});

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(path.join(tmpdir(), 'client-test-'));
  dirs.push(d);
  return d;
}

async function client(t: FakeTransport, o: Partial<IngestClientOptions> = {}): Promise<IngestClient> {
  const c = new IngestClient({ walDir: o.walDir ?? (await tempDir()), transport: t, flushIntervalMs: 20, checkpointIntervalMs: 20, backoffBaseMs: 10, backoffMaxMs: 50, ...o });
  clients.push(c);
  await c.start();
  return c;
}

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

// The same size for every i below 100,000: the disk-budget tests count free space in whole entries.
function log(i: number) {
  return { type: 'log' as const, app: 'test', data: { level: 'info', message: `entry ${String(i).padStart(5, '0')}` } };
}

describe('IngestClient record path', () => {
  it('gives every entry a UUIDv7 id and a timestamp at record time, and the edge sees that id', async () => {
    const t = new FakeTransport();
    const c = await client(t);
    const before = Date.now();
    const id = c.record(log(1));
    expect(id).toMatch(UUID_V7);
    expect(c.record({ ...log(2), id: 'mine-2' })).toBe('mine-2');
    expect(await c.drain(5000)).toBe(true);
    expect(t.delivered.map((e) => e['id'])).toEqual([id, 'mine-2']);
    expect(t.delivered[0]!['timestamp']).toBeGreaterThanOrEqual(before);
  });

  it('fills only what is missing: id, timestamp, both, or neither; explicit nulls count as missing', async () => {
    const t = new FakeTransport();
    const c = await client(t);
    const ids = [
      c.record({ ...log(0) }),
      c.record({ ...log(1), id: 'given-1' }),
      c.record({ ...log(2), timestamp: '2026-01-01T00:00:00Z' }),
      c.record({ ...log(3), id: 'given-3', timestamp: 5 }),
      c.record({ ...log(4), id: null as unknown as string, timestamp: null as unknown as number }),
    ];
    expect(await c.drain(5000)).toBe(true);
    const got = t.delivered.map((e) => [e['id'], typeof e['timestamp'] === 'number' && e['timestamp'] > 5 ? 'now' : e['timestamp']]);
    expect(got).toEqual([
      [ids[0], 'now'],
      ['given-1', 'now'],
      [ids[2], '2026-01-01T00:00:00Z'],
      ['given-3', 5],
      [ids[4], 'now'],
    ]);
    expect(ids[4]).toMatch(UUID_V7);
    // Each payload carries exactly one id and one timestamp key (no duplicate keys from splicing).
    for (const raw of t.attempts.flatMap((x) => x.raw)) {
      expect(raw.match(/"id":/g)).toHaveLength(1);
      expect(raw.match(/"timestamp":/g)).toHaveLength(1);
    }
  });

  it('emitLog, emitMetric and emitHealth build the wire entries the normalizer expects', async () => {
    const t = new FakeTransport();
    const c = await client(t, { app: 'default-app' });
    c.emitLog('api', 'warn', 'slow', { route: '/x' });
    c.emitMetric('http.latency', 0.25, { route: '/x' });
    c.emitMetric('jobs.done', 3, undefined, 'worker');
    c.emitHealth('db', 'ok', { check: 'primary', status: 'ignored-overridden' });
    expect(await c.drain(5000)).toBe(true);
    const strip = (e: Record<string, unknown>) => ({ ...e, id: undefined, timestamp: undefined });
    expect(t.delivered.map(strip)).toEqual([
      { type: 'log', app: 'api', data: { level: 'warn', message: 'slow' }, labels: { route: '/x' }, id: undefined, timestamp: undefined },
      { type: 'metric', app: 'default-app', data: { name: 'http.latency', value: 0.25 }, labels: { route: '/x' }, id: undefined, timestamp: undefined },
      { type: 'metric', app: 'worker', data: { name: 'jobs.done', value: 3 }, id: undefined, timestamp: undefined },
      { type: 'health', app: 'db', data: { check: 'primary', status: 'ok' }, id: undefined, timestamp: undefined },
    ]);
  });

  it('record() is synchronous: nothing is sent or written before it returns, even with the edge stalled', async () => {
    const t = new FakeTransport();
    t.hold();
    const c = await client(t);
    const started = performance.now();
    for (let i = 0; i < 5000; i++) c.record(log(i));
    const took = performance.now() - started;
    expect(t.attempts).toHaveLength(0);
    expect(c.stats().buffered).toBe(5000);
    expect(took).toBeLessThan(2000);
    t.release();
  });

  it('refuses invalid entries with typed errors', async () => {
    const c = await client(new FakeTransport(), { maxEntryBytes: 1024 });
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return e instanceof IngestClientError ? e.code : 'not typed';
      }
      return 'no error';
    };
    expect(code(() => c.record({ type: 'nope' as 'log', data: {} }))).toBe('CLIENT_ERR_INVALID_ENTRY');
    expect(code(() => c.record({ type: 'log', data: [] as unknown as Record<string, unknown> }))).toBe('CLIENT_ERR_INVALID_ENTRY');
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    expect(code(() => c.record({ type: 'log', data: cyclic }))).toBe('CLIENT_ERR_INVALID_ENTRY');
    expect(code(() => c.record({ type: 'log', data: JSON.parse('{"__proto__":{"x":1}}') as Record<string, unknown> }))).toBe('CLIENT_ERR_INVALID_ENTRY');
    expect(code(() => c.record({ type: 'log', data: { message: 'x'.repeat(2000) } }))).toBe('CLIENT_ERR_ENTRY_TOO_LARGE');
    // A value that merely reads "__proto__" is fine.
    expect(code(() => c.record({ type: 'log', data: { message: '__proto__' } }))).toBe('no error');
  });

  it('rejects configurations that cannot work, naming the key', () => {
    expect(() => new IngestClient({ walDir: '/tmp/x', transport: new FakeTransport(), segmentBytes: 1 << 20, maxDiskBytes: 1 << 20 })).toThrow(/maxDiskBytes/);
    expect(() => new IngestClient({ walDir: '/tmp/x', transport: new FakeTransport(), maxInFlight: 0 })).toThrow(/maxInFlight/);
    expect(() => new IngestClient({ walDir: '/tmp/x' })).toThrow(/endpoint and apiKey/);
  });
});

describe('IngestClient delivery', () => {
  it('delivers everything once, in order, advances the checkpoint to the last offset and frees the disk', async () => {
    const t = new FakeTransport();
    const c = await client(t, { maxBatchSize: 100, segmentBytes: 64 * 1024, maxEntryBytes: 4096 });
    const ids = Array.from({ length: 3000 }, (_, i) => c.record(log(i)));
    await c.flush();
    expect(await c.drain(10_000)).toBe(true);
    expect(t.delivered.map((e) => e['id'])).toEqual(ids);
    const s = c.stats();
    expect(s).toMatchObject({ appendedTotal: 3000, exportedTotal: 3000, failedTotal: 0, droppedTotal: 0, backlog: 0, ackedOffset: 2999, nextOffset: 3000 });
    expect(t.attempts.every((a) => a.entries.length <= 100)).toBe(true);
    // Acked segments are deleted in the background; waitUntil fails the test at its bound.
    await waitUntil('acknowledged segments to be deleted', () => c.stats().diskBytes < 64 * 1024, 10_000, 10);
    expect(c.stats().diskBytes).toBeLessThan(64 * 1024);
  });

  it('counts per-entry rejections in a 200 as failed and does not resend them', async () => {
    const t = new FakeTransport((e) => ({ kind: 'ok', accepted: e.length - 1, rejected: [{ index: 0, code: 'INGEST_ERR_ENTRY_TIMESTAMP', message: 'too old' }] }));
    const c = await client(t, { maxBatchSize: 50 });
    for (let i = 0; i < 200; i++) c.record(log(i));
    expect(await c.drain(5000)).toBe(true);
    const batches = t.attempts.length;
    expect(c.stats()).toMatchObject({ failedTotal: batches, exportedTotal: 200 - batches, retriesTotal: 0 });
    expect(c.stats().lastError?.code).toBe('INGEST_ERR_ENTRY_TIMESTAMP');
    expect(new Set(t.attempts.flatMap((a) => a.entries.map((e) => e['id']))).size).toBe(200);
  });

  it('counts a 400 INGEST_ERR_NO_VALID_ENTRIES as per-entry rejections with their codes: not retried, not split, not a transport failure', async () => {
    // The edge's answer when no entry of a batch was taken, mapped by the HTTP transport's own reading.
    const t = new FakeTransport((e) =>
      interpretResponse(
        400,
        undefined,
        JSON.stringify({
          error: { code: 'INGEST_ERR_NO_VALID_ENTRIES', message: `no entry of the request was accepted (${e.length} refused)`, retryable: false },
          accepted: 0,
          rejected: e.map((_, index) => ({ index, code: 'INGEST_ERR_ENTRY_TIMESTAMP', message: 'older than the accepted window' })),
        }),
        e.length,
      ),
    );
    const c = await client(t, { maxBatchSize: 25 });
    for (let i = 0; i < 100; i++) c.record(log(i));
    expect(await c.drain(5000)).toBe(true);
    expect(c.stats()).toMatchObject({ failedTotal: 100, exportedTotal: 0, retriesTotal: 0, backlog: 0 });
    expect(c.stats().lastError?.code).toBe('INGEST_ERR_ENTRY_TIMESTAMP');
    // Each entry was sent exactly once: no bisecting, no resend.
    expect(t.attempts.reduce((n, a) => n + a.entries.length, 0)).toBe(100);
    expect(t.delivered).toHaveLength(0);
  });

  it('bisects a batch the edge refuses with a 400 so only the bad entry fails', async () => {
    const t = new FakeTransport((e) =>
      e.some((x) => (x['data'] as { poison?: boolean }).poison) ? { kind: 'reject', status: 400, code: 'INGEST_ERR_NESTING_TOO_DEEP', message: 'deep' } : { kind: 'ok', accepted: e.length, rejected: [] },
    );
    const c = await client(t, { maxBatchSize: 64 });
    for (let i = 0; i < 64; i++) c.record(i === 37 ? { type: 'log', data: { poison: true } } : log(i));
    expect(await c.drain(5000)).toBe(true);
    expect(c.stats()).toMatchObject({ failedTotal: 1, exportedTotal: 63 });
    expect(t.delivered).toHaveLength(63);
  });

  it('a non-retryable refusal of a single entry fails it without a retry', async () => {
    const t = new FakeTransport(() => ({ kind: 'reject', status: 422, code: 'X', message: 'no' }));
    const c = await client(t);
    c.record(log(0));
    expect(await c.drain(5000)).toBe(true);
    expect(c.stats()).toMatchObject({ failedTotal: 1, retriesTotal: 0 });
    expect(t.attempts).toHaveLength(1);
  });

  it('splits a batch on 413 until it fits', async () => {
    const t = new FakeTransport((e) => (e.length > 10 ? { kind: 'tooLarge', status: 413, code: 'INGEST_ERR_BODY_TOO_LARGE', message: 'big' } : { kind: 'ok', accepted: e.length, rejected: [] }));
    const c = await client(t, { maxBatchSize: 100 });
    const ids = Array.from({ length: 100 }, (_, i) => c.record(log(i)));
    expect(await c.drain(5000)).toBe(true);
    expect(t.delivered.map((e) => e['id'])).toEqual(ids);
    expect(c.stats().failedTotal).toBe(0);
  });

  it('waits at least Retry-After before any further request, retries, and delivers everything', async () => {
    let n = 0;
    // When the client learns of each refusal, and how many attempts had started by then.
    const refusals: Array<{ at: number; startedBefore: number }> = [];
    const t = new FakeTransport(async (e) => {
      n++;
      const refuse = n <= 3;
      // Request latency, not a wait on anything: it lets the three requests overlap, so refusals arrive while others are out.
      await new Promise((r) => setTimeout(r, 5));
      if (!refuse) return { kind: 'ok', accepted: e.length, rejected: [] };
      refusals.push({ at: Date.now(), startedBefore: t.attempts.length });
      return { kind: 'retry', status: 503, code: 'INGEST_ERR_EDGE_OVERLOADED', message: 'busy', retryAfterMs: 300 };
    });
    const c = await client(t, { maxBatchSize: 50, maxInFlight: 3 });
    const ids = Array.from({ length: 400 }, (_, i) => c.record(log(i)));
    expect(await c.drain(10_000)).toBe(true);
    // No attempt starts within 300 ms after a refusal the client had already seen. (Attempts in
    // flight when a refusal arrives were sent before it and cannot be held back.)
    expect(refusals).toHaveLength(3);
    for (const r of refusals) {
      for (const a of t.attempts.slice(r.startedBefore)) expect(a.at - r.at).toBeGreaterThanOrEqual(300 - 2);
    }
    expect(c.stats().retriesTotal).toBeGreaterThanOrEqual(1);
    expect(new Set(t.delivered.map((e) => e['id']))).toEqual(new Set(ids));
    expect(t.delivered).toHaveLength(400);
    expect(t.maxInFlight).toBeLessThanOrEqual(3);
  });

  it('never has more than maxInFlight requests out, and does use them all', async () => {
    // Requests are held until three are out at once (or every entry has been sent), so reaching
    // maxInFlight does not depend on how fast requests happen to be answered. The latency after
    // that is the window in which a client ignoring the limit would send a fourth: without it, all
    // three answer before such a client has read its next batch and the limit goes untested.
    const held: Array<() => void> = [];
    let sent = 0;
    let gateOpen = false;
    const releaseHeld = () => {
      for (const open of held.splice(0)) open();
    };
    const t = new FakeTransport(async (e) => {
      sent += e.length;
      if (!gateOpen) {
        const answer = new Promise<void>((r) => held.push(r));
        if (t.inFlight >= 3 || sent === 1000) releaseHeld();
        await answer;
      }
      await new Promise((r) => setTimeout(r, 15));
      return { kind: 'ok', accepted: e.length, rejected: [] };
    });
    const c = await client(t, { maxBatchSize: 20, maxInFlight: 3 });
    for (let i = 0; i < 1000; i++) c.record(log(i));
    const drained = await c.drain(10_000);
    // A client that never gets three out leaves requests held: answer them so close() can finish.
    gateOpen = true;
    releaseHeld();
    expect(drained).toBe(true);
    expect(t.maxInFlight).toBe(3);
    expect(c.maxObservedInFlight).toBe(3);
  });

  it('gives up on a batch after maxRetries and counts its entries as failed', async () => {
    const t = new FakeTransport(() => ({ kind: 'retry', status: 500, code: 'HTTP_500', message: 'boom' }));
    const c = await client(t, { maxRetries: 2, maxBatchSize: 10 });
    for (let i = 0; i < 10; i++) c.record(log(i));
    expect(await c.drain(5000)).toBe(true);
    expect(t.attempts).toHaveLength(3);
    expect(c.stats()).toMatchObject({ failedTotal: 10, retriesTotal: 2, exportedTotal: 0 });
  });

  it('holds data on 401 (retries) unless holdOnAuthError is off', async () => {
    let n = 0;
    const t = new FakeTransport((e) => (++n <= 2 ? { kind: 'auth', status: 401, code: 'INGEST_ERR_INVALID_API_KEY', message: 'revoked' } : { kind: 'ok', accepted: e.length, rejected: [] }));
    const c = await client(t);
    c.record(log(0));
    expect(await c.drain(5000)).toBe(true);
    expect(c.stats()).toMatchObject({ exportedTotal: 1, retriesTotal: 2, failedTotal: 0 });

    const t2 = new FakeTransport(() => ({ kind: 'auth', status: 401, code: 'INGEST_ERR_INVALID_API_KEY', message: 'revoked' }));
    const c2 = await client(t2, { holdOnAuthError: false });
    c2.record(log(0));
    expect(await c2.drain(5000)).toBe(true);
    expect(c2.stats()).toMatchObject({ failedTotal: 1, retriesTotal: 0 });
  });

  it('treats a throwing transport as retryable', async () => {
    let n = 0;
    const t = new FakeTransport((e) => {
      if (++n === 1) throw new Error('socket hang up');
      return { kind: 'ok', accepted: e.length, rejected: [] };
    });
    const c = await client(t);
    c.record(log(0));
    expect(await c.drain(5000)).toBe(true);
    expect(c.stats()).toMatchObject({ exportedTotal: 1, retriesTotal: 1 });
  });

  it('reports the age of the oldest undelivered entry', async () => {
    const t = new FakeTransport();
    t.hold();
    const c = await client(t);
    const recordedFrom = Date.now();
    c.record(log(0));
    const age = await waitUntil(
      'the reported age to reach 100 ms',
      () => {
        const a = c.stats().oldestUnackedAgeMs;
        return a >= 100 ? a : undefined;
      },
      5000,
      5,
    );
    // The age of that entry, which is still held: never more than the time since it was recorded.
    expect(age).toBeLessThanOrEqual(Date.now() - recordedFrom);
    expect(t.delivered).toHaveLength(0);
    t.release();
    expect(await c.drain(5000)).toBe(true);
    expect(c.stats().oldestUnackedAgeMs).toBe(0);
  });
});

describe('IngestClient disk budget', () => {
  // ~170 bytes per record on disk: 1,000 entries need ~170 KB against a 32 KiB budget.
  const MAX_DISK = 32 * 1024;
  const small: Partial<IngestClientOptions> = { segmentBytes: 8 * 1024, maxDiskBytes: MAX_DISK, maxEntryBytes: 1024, maxBatchBytes: 8 * 1024, maxBatchSize: 20 };
  const ENTRY_ON_DISK = recordSize(encodeEntry(log(0), 1024, Date.now()).payload.length);
  // What the flusher writes at once while the buffer holds more: as many whole entries as fit
  // under writeChunkCapBytes. With the edge answering nothing, no space is ever freed, so once
  // less than that is free the flusher can finish at most the write it may be doing now, and
  // then waits for good.
  const CHUNK_ENTRIES = Math.floor(writeChunkCapBytes(MAX_DISK) / ENTRY_ON_DISK);
  const noRoomForAChunk = (c: IngestClient) => MAX_DISK - c.stats().diskBytes < CHUNK_ENTRIES * ENTRY_ON_DISK;
  // Every request the edge got is held: nothing is acknowledged, so no disk space comes back.
  const edgeHoldsAll = (t: FakeTransport) => t.attempts.length > 0 && t.inFlight === t.attempts.length;

  it('block: flush() waits while the budget is used up, nothing is dropped, and everything arrives once space frees', async () => {
    const t = new FakeTransport();
    t.hold();
    const c = await client(t, { ...small, fullPolicy: 'block' });
    const ids = Array.from({ length: 1000 }, (_, i) => c.record(log(i)));
    let flushed = false;
    const f = c.flush().then(() => (flushed = true));
    await waitUntil('the disk at its budget with entries still buffered and the edge holding all', () => noRoomForAChunk(c) && c.stats().buffered > 0 && edgeHoldsAll(t), 10_000, 5);
    expect(flushed).toBe(false);
    expect(c.stats().diskBytes).toBeLessThanOrEqual(32 * 1024);
    expect(c.stats().buffered).toBeGreaterThan(0);
    t.release();
    await f;
    expect(await c.drain(10_000)).toBe(true);
    expect(c.stats().droppedTotal).toBe(0);
    expect(t.delivered.map((e) => e['id'])).toEqual(ids);
  });

  it('block: record() throws CLIENT_ERR_BUFFER_FULL when the buffer is full too; recordAsync() waits for room', async () => {
    const t = new FakeTransport();
    t.hold();
    const BUFFER = 100;
    const c = await client(t, { ...small, fullPolicy: 'block', maxBufferEntries: BUFFER });
    let thrown: unknown;
    for (let i = 0; i < 5000 && thrown === undefined; ) {
      try {
        c.record(log(i));
        i++;
      } catch (e) {
        const flusherBehind = e instanceof IngestClientError && e.code === 'CLIENT_ERR_BUFFER_FULL' && !noRoomForAChunk(c);
        if (!flusherBehind) {
          thrown = e;
          break;
        }
        // Only the buffer is full: the flusher has not caught up yet. Let it make room, or fill the disk.
        await waitUntil('room in the buffer or the disk at its budget', () => c.stats().buffered < BUFFER || noRoomForAChunk(c), 10_000, 1);
      }
    }
    expect(thrown).toBeInstanceOf(IngestClientError);
    expect((thrown as IngestClientError).code).toBe('CLIENT_ERR_BUFFER_FULL');
    expect(noRoomForAChunk(c)).toBe(true);
    // recordAsync() waits instead. The buffer was full when record() threw; from now on the
    // flusher can take one more chunk out of it at most, which it cannot write. So of 300 calls
    // made now no more than a chunk's worth can be admitted until the edge answers.
    const appendedBefore = c.stats().appendedTotal;
    let resolved = 0;
    const waits = Array.from({ length: 300 }, (_, i) => c.recordAsync(log(10_000 + i)).then(() => resolved++));
    // Whatever was admitted shows in appendedTotal at once; wait until its callers have seen it too.
    await waitUntil(
      'no more room, the edge holding all, and every admitted call resolved',
      () => noRoomForAChunk(c) && edgeHoldsAll(t) && c.stats().appendedTotal - appendedBefore === resolved,
      10_000,
      5,
    );
    expect(resolved).toBeLessThanOrEqual(CHUNK_ENTRIES);
    expect(c.stats().droppedTotal).toBe(0);
    t.release();
    await Promise.all(waits);
    expect(resolved).toBe(300);
    expect(await c.drain(10_000)).toBe(true);
    expect(c.stats().droppedTotal).toBe(0);
  });

  it('dropOldest: never blocks, counts what it drops, keeps within the budget and delivers the newest', async () => {
    const t = new FakeTransport();
    t.hold();
    const c = await client(t, { ...small, fullPolicy: 'dropOldest' });
    const ids = Array.from({ length: 1000 }, (_, i) => c.record(log(i)));
    await c.flush();
    const s = c.stats();
    expect(s.droppedTotal).toBeGreaterThan(0);
    expect(s.diskBytes).toBeLessThanOrEqual(32 * 1024);
    t.release();
    expect(await c.drain(10_000)).toBe(true);
    const end = c.stats();
    expect(end.exportedTotal + end.droppedTotal).toBe(1000);
    expect(t.delivered.at(-1)?.['id']).toBe(ids.at(-1));
  });

  it('rejectNew: record() throws CLIENT_ERR_WAL_FULL at the budget, and works again after delivery', async () => {
    const t = new FakeTransport();
    t.hold();
    const c = await client(t, { ...small, fullPolicy: 'rejectNew' });
    let accepted = 0;
    let err: unknown;
    for (let i = 0; i < 1000; i++) {
      try {
        c.record(log(i));
        accepted++;
      } catch (e) {
        err = e;
        break;
      }
    }
    expect(err).toBeInstanceOf(IngestClientError);
    expect((err as IngestClientError).code).toBe('CLIENT_ERR_WAL_FULL');
    expect(accepted).toBeGreaterThan(50);
    expect(accepted).toBeLessThan(1000);
    t.release();
    expect(await c.drain(10_000)).toBe(true);
    expect(c.stats()).toMatchObject({ exportedTotal: accepted, droppedTotal: 0 });
    expect(() => c.record(log(0))).not.toThrow();
  });
});

describe('IngestClient lifecycle', () => {
  it('close() puts buffered entries on disk; a new client on the same WAL delivers them', async () => {
    const dir = await tempDir();
    const t = new FakeTransport();
    t.hold();
    const c = await client(t, { walDir: dir, flushIntervalMs: 60_000 });
    const ids = Array.from({ length: 500 }, (_, i) => c.record(log(i)));
    expect(c.stats().buffered).toBe(500);
    await c.close();
    await c.close();
    await c[Symbol.asyncDispose]();
    expect(() => c.record(log(0))).toThrow(expect.objectContaining({ code: 'CLIENT_ERR_CLOSED' }) as Error);

    const t2 = new FakeTransport();
    const c2 = await client(t2, { walDir: dir });
    expect(c2.stats().backlog).toBe(500);
    expect(await c2.drain(5000)).toBe(true);
    expect(t2.delivered.map((e) => e['id'])).toEqual(ids);
  });

  it('after a restart only entries past the persisted checkpoint are resent', async () => {
    const dir = await tempDir();
    const t = new FakeTransport();
    const c = await client(t, { walDir: dir });
    for (let i = 0; i < 300; i++) c.record(log(i));
    expect(await c.drain(5000)).toBe(true);
    const more = Array.from({ length: 50 }, (_, i) => c.record(log(1000 + i)));
    t.hold();
    await c.flush();
    await c.close();
    const t2 = new FakeTransport();
    const c2 = await client(t2, { walDir: dir });
    expect(await c2.drain(5000)).toBe(true);
    expect(t2.delivered.map((e) => e['id'])).toEqual(more);
  });

  it('flush() before start() is refused; records made before start() are kept', async () => {
    const t = new FakeTransport();
    const c = new IngestClient({ walDir: await tempDir(), transport: t, flushIntervalMs: 20 });
    clients.push(c);
    const id = c.record(log(0));
    await expect(c.flush()).rejects.toMatchObject({ code: 'CLIENT_ERR_NOT_STARTED' });
    await c.start();
    await c.start();
    expect(await c.drain(5000)).toBe(true);
    expect(t.delivered.map((e) => e['id'])).toEqual([id]);
  });

  it('close() closes the transport and leaves no timers keeping the process alive', async () => {
    const t = new FakeTransport();
    t.hold();
    const refTimersBefore = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const c = await client(t, { fsync: 'interval', fsyncIntervalMs: 10 });
    c.record(log(0));
    // The attempt reaching the edge shows the flusher and sender have run: their timers are live.
    await waitUntil('the transport to receive the attempt', () => t.attempts.length === 1, 5000, 5);
    await c.close();
    expect(t.closed).toBe(true);
    expect(c.stats().inFlight).toBe(0);
    // The held request was aborted, not left hanging.
    expect(t.inFlight).toBe(0);
    // getActiveResourcesInfo() lists only timers that keep the process alive (ref'd ones).
    expect(process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length).toBeLessThanOrEqual(refTimersBefore);
  });
});

describe('retryDelay', () => {
  it('grows exponentially with equal jitter and stops at the ceiling', () => {
    expect(retryDelay(1, 100, 10_000, undefined, () => 0)).toBe(50);
    expect(retryDelay(1, 100, 10_000, undefined, () => 1)).toBe(100);
    expect(retryDelay(4, 100, 10_000, undefined, () => 1)).toBe(800);
    expect(retryDelay(30, 100, 10_000, undefined, () => 1)).toBe(10_000);
  });

  it('is never shorter than Retry-After', () => {
    for (const r of [0, 0.5, 1]) expect(retryDelay(1, 100, 10_000, 2000, () => r)).toBeGreaterThanOrEqual(2000);
    expect(retryDelay(10, 100, 10_000, 2000, () => 1)).toBe(10_000);
  });
});
