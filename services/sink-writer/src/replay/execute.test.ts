import { describe, expect, it } from 'vitest';
import { TABLES, type ShadowTableName } from '@ingest/storage';
import { executeReplay, replayToken } from './execute.ts';
import { buildPlan } from './plan.ts';
import { parseReplayRequest } from './request.ts';
import { resolveRange, type ResolvedRange } from './resolve.ts';
import { entryJson, FakeAdmin, FakeShadow, type FakeMessage } from '../../test/replay-fakes.ts';

const TOPIC = 'telemetry.v2';
const T0 = Date.UTC(2026, 10, 20, 10);

/** 1,000 entries in partition 0 (tenant b every 4th, else a); one of b's undecodable, one appended twice. */
function log(): FakeAdmin {
  const m: FakeMessage[] = [];
  for (let i = 0; i < 1000; i++) {
    const key = i % 4 === 0 ? 'b' : 'a';
    m.push({ offset: i, timestamp: T0 + i, key, value: entryJson(key, `id-${i}`, T0 + i * 1000) });
  }
  (m[500] as FakeMessage).value = '{not json';
  // A producer retry appended entry 12 (tenant b) again (at-least-once): same id, same ts.
  (m[900] as FakeMessage).value = entryJson('b', 'id-12', T0 + 12 * 1000);
  return new FakeAdmin(TOPIC).add(0, m);
}

async function range(admin: FakeAdmin, body: Record<string, unknown>): Promise<ResolvedRange> {
  return resolveRange(admin, TOPIC, parseReplayRequest(body));
}

describe('replay plan and run', () => {
  it('the plan counts exactly what the run then inserts, and writes nothing', async () => {
    const admin = log();
    const shadow = new FakeShadow();
    const r = await range(admin, { from: 'earliest', to: 'latest' });
    const plan = await buildPlan({ admin, lookup: shadow, previousRuns: async () => [] }, r, { chunk: 128 });
    expect(shadow.inserts).toEqual([]);
    expect(plan).toMatchObject({ entries: 1000, undecodable: 1, duplicates: 1, toInsert: 998, toInsertExact: true, replayedBefore: false });
    expect(plan.partitions[0]).toMatchObject({ firstOffset: 0, lastOffset: 999, entries: 1000, toInsert: 998 });
    expect(plan.tenants).toEqual([
      { tenant: 'a', entries: 750, toInsert: 750, duplicates: 0 },
      { tenant: 'b', entries: 250, toInsert: 248, duplicates: 1 },
    ]);
    expect(plan.eventDays).toEqual([{ day: '2026-11-20', entries: 999 }]);

    const run = await executeReplay({ admin, lookup: shadow, writer: shadow }, r, { runId: 'run-1', chunk: 128 });
    expect(run).toMatchObject({ status: 'done', read: 1000, inserted: 998, skippedDuplicates: 1, deadLettered: 1 });
    expect(run.inserted).toBe(plan.toInsert);
    expect(run.deadLetterSample).toEqual([{ partition: 0, offset: 500, reason: expect.any(String) as string }]);
    expect(shadow.rows.size).toBe(998);
    // Every block went to the shadow table, with the run's id in its token.
    for (const i of shadow.inserts) {
      expect(i.table).toBe(TABLES.shadow);
      expect(i.token).toMatch(/^replay-run-1:telemetry\.v2:0:\d+-\d+$/);
    }
  });

  it('an event window keeps only entries with event times in [from, to); the plan says how many of the scanned range', async () => {
    const admin = log();
    const shadow = new FakeShadow();
    const from = new Date(T0 + 100_000).toISOString();
    const to = new Date(T0 + 200_000).toISOString();
    const r = await range(admin, { from: 'earliest', to: 'latest', eventFrom: from, eventTo: to });
    const plan = await buildPlan({ admin, lookup: shadow, previousRuns: async () => [] }, r, { chunk: 128 });
    // 100 entries (ids 100..199) have event times in the window; the retried copy of id-12 and the rest are outside.
    expect(plan).toMatchObject({ entries: 1000, inEventWindow: 100, outsideEventWindow: 899, undecodable: 1, toInsert: 100, duplicates: 0, eventWindow: { from, to } });
    expect(plan.eventTime).toEqual({ min: from, max: new Date(T0 + 199_000).toISOString() });
    const run = await executeReplay({ admin, lookup: shadow, writer: shadow }, r, { runId: 'ev-1', chunk: 128 });
    expect(run).toMatchObject({ status: 'done', read: 1000, inserted: 100, skippedDuplicates: 0, deadLettered: 1, outsideEventWindow: 899 });
    expect(run.read).toBe(run.inserted + run.skippedDuplicates + run.deadLettered + run.outsideEventWindow);
    expect([...shadow.rows.values()].every((row) => row.ts >= T0 + 100_000 && row.ts < T0 + 200_000)).toBe(true);
    // Still idempotent: the same event window again inserts nothing.
    const again = await executeReplay({ admin, lookup: shadow, writer: shadow }, r, { runId: 'ev-2', chunk: 128 });
    expect(again).toMatchObject({ inserted: 0, skippedDuplicates: 100, outsideEventWindow: 899 });
  });

  it('an event window needs both ends, with zones, from before to', () => {
    expect(() => parseReplayRequest({ from: 'earliest', to: 'latest', eventFrom: '2026-11-20T10:00:00Z' })).toThrow(/go together/);
    expect(() => parseReplayRequest({ from: 'earliest', to: 'latest', eventFrom: '2026-11-20T11:00:00Z', eventTo: '2026-11-20T10:00:00Z' })).toThrow(/not before/);
    expect(() => parseReplayRequest({ from: 'earliest', to: 'latest', eventFrom: '2026-11-20T10:00:00', eventTo: '2026-11-20T11:00:00Z' })).toThrow(/zone/);
  });

  it('says when its memory of earlier rows ran out (a repeat far back is then counted as to insert)', async () => {
    const admin = log();
    const shadow = new FakeShadow();
    const r = await range(admin, { from: 'earliest', to: 'latest' });
    const plan = await buildPlan({ admin, lookup: shadow, previousRuns: async () => [] }, r, { chunk: 100, memoryKeys: 300 });
    expect(plan).toMatchObject({ toInsert: 999, duplicates: 0, toInsertExact: false });
  });

  it('a second run over the same range inserts nothing and says why', async () => {
    const admin = log();
    const shadow = new FakeShadow();
    const r = await range(admin, { from: '0', to: '999' });
    await executeReplay({ admin, lookup: shadow, writer: shadow }, r, { runId: 'one', chunk: 300 });
    const inserts = shadow.inserts.length;
    const second = await executeReplay({ admin, lookup: shadow, writer: shadow }, r, { runId: 'two', chunk: 300 });
    expect(second).toMatchObject({ status: 'done', read: 1000, inserted: 0, skippedDuplicates: 999, deadLettered: 1 });
    expect(shadow.inserts.length).toBe(inserts);
    const plan = await buildPlan({ admin, lookup: shadow, previousRuns: async () => [] }, r, { chunk: 300 });
    expect(plan).toMatchObject({ toInsert: 0, duplicates: 999 });
  });

  it('a cleaned shadow takes a fresh run, under tokens no earlier run used', async () => {
    const admin = log();
    const shadow = new FakeShadow();
    const r = await range(admin, { from: '0', to: '99' });
    await executeReplay({ admin, lookup: shadow, writer: shadow }, r, { runId: 'first', chunk: 50 });
    const firstTokens = new Set(shadow.inserts.map((i) => i.token));
    shadow.rows.clear(); // ALTER TABLE … DELETE / TRUNCATE
    const again = await executeReplay({ admin, lookup: shadow, writer: shadow }, r, { runId: 'second', chunk: 50 });
    expect(again.inserted).toBe(100);
    for (const i of shadow.inserts.slice(firstTokens.size)) expect(firstTokens.has(i.token)).toBe(false);
  });

  it('a failed insert is retried with the identical block and token', async () => {
    const admin = log();
    const shadow = new FakeShadow();
    shadow.failNext = 2;
    const retries: number[] = [];
    const r = await range(admin, { from: '0', to: '99' });
    const s = await executeReplay({ admin, lookup: shadow, writer: shadow }, r, { runId: 'x', chunk: 100, retryDelayMs: 1, onRetry: (i) => retries.push(i.attempt) });
    expect(retries).toEqual([1, 2]);
    expect(shadow.inserts.map((i) => i.token)).toEqual(Array(3).fill(replayToken('x', { topic: TOPIC, partition: 0, firstOffset: 0, lastOffset: 99 })));
    expect(shadow.inserts.map((i) => i.rows)).toEqual([100, 100, 100]);
    // Counted once, although the block was sent three times.
    expect(s).toMatchObject({ status: 'done', inserted: 100, skippedDuplicates: 0 });
  });

  it('a run that keeps failing ends as failed, counting only what landed', async () => {
    const admin = log();
    const shadow = new FakeShadow();
    const r = await range(admin, { from: '0', to: '199' });
    let calls = 0;
    const writer = {
      insert: async (t: ShadowTableName, rows: Parameters<FakeShadow['insert']>[1], token: string) => {
        calls++;
        if (calls > 1) throw new Error('clickhouse down');
        await shadow.insert(t, rows, token);
      },
    };
    const s = await executeReplay({ admin, lookup: shadow, writer }, r, { runId: 'f', chunk: 100, retryDelayMs: 1, insertAttempts: 3 });
    expect(s).toMatchObject({ status: 'failed', error: 'clickhouse down', inserted: 100, read: 100 });
  });

  it('stops after the current chunk when cancelled', async () => {
    const admin = log();
    const shadow = new FakeShadow();
    const abort = new AbortController();
    const r = await range(admin, { from: '0', to: '999' });
    const s = await executeReplay({ admin, lookup: shadow, writer: shadow }, r, {
      runId: 'c',
      chunk: 100,
      signal: abort.signal,
      onProgress: (done) => {
        if (done >= 200) abort.abort();
      },
    });
    expect(s).toMatchObject({ status: 'cancelled', read: 200, inserted: 200 });
    // Where it stopped, so on-call can see it; a re-run skips what landed.
    expect(s.partitions[0]).toMatchObject({ firstOffset: 0, lastOffset: 999, doneThrough: 199 });
  });

  it('fails rather than skip silently when retention removes offsets during the run', async () => {
    const admin = log();
    const shadow = new FakeShadow();
    const r = await range(admin, { from: '0', to: '999' });
    const p = admin.parts.get(0);
    if (p) p.low = 500;
    const s = await executeReplay({ admin, lookup: shadow, writer: shadow }, r, { runId: 'ret', chunk: 100 });
    expect(s).toMatchObject({ status: 'failed', read: 0 });
    expect(s.error).toContain('offsets 0..499 were removed by retention');
  });

  it('limits a run to one tenant', async () => {
    const admin = log();
    const shadow = new FakeShadow();
    const r = await range(admin, { from: 'earliest', to: 'latest', tenant: 'b' });
    const s = await executeReplay({ admin, lookup: shadow, writer: shadow }, r, { runId: 't', chunk: 256 });
    expect(s).toMatchObject({ read: 250, inserted: 248, skippedDuplicates: 1, deadLettered: 1 });
    expect([...shadow.rows.values()].every((x) => x.tenant_id === 'b')).toBe(true);
  });

  it('refuses the live table even if a caller bypasses request validation', async () => {
    const admin = log();
    const shadow = new FakeShadow();
    const r = await range(admin, { from: '0', to: '9' });
    await expect(executeReplay({ admin, lookup: shadow, writer: shadow }, { ...r, target: 'telemetry' as ShadowTableName }, { runId: 'l', chunk: 10 })).rejects.toThrow(/refusing/);
    expect(shadow.inserts).toEqual([]);
  });

  it('holds one chunk of the log at a time', async () => {
    const admin = log();
    const shadow = new FakeShadow();
    const r = await range(admin, { from: 'earliest', to: 'latest' });
    await executeReplay({ admin, lookup: shadow, writer: shadow }, r, { runId: 'm', chunk: 64 });
    expect(Math.max(...shadow.inserts.map((i) => i.rows))).toBeLessThanOrEqual(64);
    expect(admin.reads).toBe(Math.ceil(1000 / 64));
  });
});
