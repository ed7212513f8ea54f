import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NormalizedEntry } from '@ingest/contracts';
import { ReplayRuns } from './replay-runs.ts';
import { toRow } from './rows.ts';
import { ShadowStore } from './shadow.ts';
import { TelemetryStore } from './store.ts';

// Real ClickHouse engine (chDB in-process), so the SQL is what a ClickHouse server runs.
describe('ShadowStore on chDB', () => {
  let dir: string;
  let store: TelemetryStore;
  let shadow: ShadowStore;
  const DAY = Date.UTC(2026, 10, 20);

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'shadow-'));
    store = await TelemetryStore.open({ chdbPath: path.join(dir, 'chdb') });
    await store.migrate();
    shadow = new ShadowStore(store);
  });
  afterAll(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  const entry = (id: string, ts: number, tenant = 't1'): NormalizedEntry => ({
    id, tenant, type: 'log', ts, receivedAt: ts, app: 'a', source: 's', labels: {}, name: '', value: null, unit: '', level: 'info', message: id, data: {},
  });
  const rows = (ids: string[], tenant = 't1', day = DAY) => ids.map((id, i) => toRow(entry(id, day + i * 60_000, tenant), 0, i));

  it('finds existing rows by full key, in batches, with hostile ids as plain values', async () => {
    const many = rows(Array.from({ length: 2500 }, (_, i) => `id-${i}`));
    await store.insert('telemetry_shadow', many.slice(0, 1200), 'test:existing');
    const odd = rows(["x' OR 1=1 --"], 't1', DAY + 3_600_000);
    const found = await shadow.existing('telemetry_shadow', [...many, ...odd]);
    expect(found.size).toBe(1200);
    // Same id, other ts: another row of the ReplacingMergeTree, so not "existing".
    const moved = { ...(many[0] as (typeof many)[number]), ts: DAY + 999 };
    expect((await shadow.existing('telemetry_shadow', [moved])).size).toBe(0);
    await shadow.drop();
    expect(await shadow.days()).toEqual([]);
  });

  it('diffs per tenant, type and hour; plans and performs a promote; drops one day', async () => {
    await store.insert('telemetry', rows(['a', 'b', 'c']), 'test:live');
    await store.insert('telemetry_shadow', rows(['a', 'b', 'c', 'd']), 'test:shadow');
    await store.insert('telemetry_shadow', rows(['z'], 't1', DAY + 86_400_000), 'test:shadow-next');

    const d = await shadow.diff({ days: [20261120] });
    expect(d.rows).toHaveLength(1);
    expect(d.rows[0]).toMatchObject({ tenant: 't1', type: 'log', hour: '2026-11-20T00:00:00.000Z', liveCount: 3, shadowCount: 4, equal: false });
    expect((await shadow.diff()).days).toEqual([20261120, 20261121]);

    const plan = await shadow.promotePlan(20261120);
    expect(plan).toMatchObject({ liveRows: 3, shadowRows: 4, shadowOnly: 1, liveOnly: 0, sql: 'ALTER TABLE telemetry REPLACE PARTITION 20261120 FROM telemetry_shadow' });

    // An entry only live has is what a promote would lose: the plan says so.
    await store.insert('telemetry', rows(['only-live'], 't2'), 'test:live2');
    expect((await shadow.promotePlan(20261120)).liveOnly).toBe(1);

    await shadow.promote(20261120);
    expect(await shadow.promotePlan(20261120)).toMatchObject({ liveRows: 4, shadowRows: 4, liveOnly: 0, shadowOnly: 0 });
    expect((await shadow.diff({ days: [20261120] })).rows.every((r) => r.equal)).toBe(true);

    await shadow.drop('telemetry_shadow', 20261121);
    expect(await shadow.days()).toEqual([{ day: 20261120, rows: 4 }]);
    await expect(shadow.drop('telemetry' as 'telemetry_shadow')).rejects.toThrow(/refusing/);
  });

  it('records replay runs and finds the ones overlapping a range', async () => {
    const runs = new ReplayRuns(store);
    const base = { topic: 'tv2', target: 'telemetry_shadow' as const, tenant: '', who: 'me', startedAt: 1, read: 0, inserted: 0, skipped: 0, deadLettered: 0 };
    await runs.record([{ ...base, runId: 'r1', partition: 0, firstOffset: 100, lastOffset: 199, status: 'running', updatedAt: 1 }]);
    await runs.record([{ ...base, runId: 'r1', partition: 0, firstOffset: 100, lastOffset: 199, status: 'done', updatedAt: 2, inserted: 100 }]);
    await runs.record([{ ...base, runId: 'r2', partition: 1, firstOffset: 0, lastOffset: 9, status: 'done', updatedAt: 2 }]);
    const hit = await runs.overlapping('tv2', 'telemetry_shadow', [{ partition: 0, first: 150, last: 300 }]);
    expect(hit).toEqual([expect.objectContaining({ runId: 'r1', status: 'done', inserted: 100 })]);
    expect(await runs.overlapping('tv2', 'telemetry_shadow', [{ partition: 0, first: 200, last: 300 }])).toEqual([]);
    expect(await runs.overlapping('tv2', 'telemetry_shadow', [{ partition: 1, first: 9, last: 9 }])).toHaveLength(1);
  });
});
