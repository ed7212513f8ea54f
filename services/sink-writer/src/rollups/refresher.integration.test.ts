import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NormalizedEntry } from '@ingest/contracts';
import { TelemetryStore, parseEntryQuery, queryRollups, readWatermark, toRow } from '@ingest/storage';
import { waitUntil } from '@ingest/testkit';
import { RollupRefresher } from './refresher.ts';

const bounds = { maxExecutionSeconds: 10, maxRowsRead: 10_000_000, maxMemoryBytes: 256 * 1024 * 1024 };
const t0 = Date.UTC(2026, 10, 21, 8);

// Real ClickHouse engine (chDB in-process): the refresher's cycles against the tables it keeps.
describe('RollupRefresher on chDB', () => {
  let dir: string;
  let store: TelemetryStore;
  let offset = 0;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'refresher-'));
    store = await TelemetryStore.open({ chdbPath: path.join(dir, 'chdb') });
    await store.migrate();
  });
  afterAll(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  const insert = async (n: number, tenant: string) => {
    const rows = Array.from({ length: n }, (_, i): NormalizedEntry => ({
      id: `${tenant}-${offset + i}`, tenant, type: 'log', ts: t0 + (offset + i) * 1000, receivedAt: t0, app: 'a', source: 's', labels: {}, name: '', value: null, unit: '', level: 'info', message: 'm', data: {},
    })).map((e) => toRow(e, 0, offset++));
    await store.insert('telemetry', rows, `refresher:${offset}`);
  };
  const total = async (tenant: string) => {
    const page = await queryRollups(store.client, { ...parseEntryQuery('rollup=1h', tenant, Date.now()), rollup: '1h' }, bounds);
    return page.counts.reduce((a, c) => a + c.count, 0);
  };

  it('a cycle computes what was loaded; the next counts only what is new; the watermark is stored and a new refresher resumes from it', async () => {
    const cycles: number[] = [];
    const r = new RollupRefresher(store.client, { intervalMs: 1_000, settleMs: 60_000, onCycle: (c) => cycles.push(c.toMs) });
    await insert(150, 'acme');
    await r.refreshNow();
    expect(await total('acme')).toBe(150);
    await insert(30, 'acme');
    await insert(150, 'acme'); // new ids
    await r.refreshNow();
    expect(await total('acme')).toBe(330);
    const stored = await readWatermark(store.client);
    expect(stored).toBe(r.status().watermarkMs);
    expect(cycles).toHaveLength(2);
    await r.close();
    await r.close();

    const again = new RollupRefresher(store.client, { intervalMs: 1_000, settleMs: 60_000 });
    expect(again.status().watermarkMs).toBeUndefined();
    await insert(5, 'acme');
    const c = await again.refreshNow();
    // Resumed: it read from the stored watermark less the settle time and two intervals, not from the beginning.
    expect(c?.fromMs).toBeGreaterThanOrEqual((stored as number) - 62_000);
    expect(await total('acme')).toBe(335);
    await again.close();
  });

  it('a bucket is computed again only when it has a newer marker (or its settled pass is due)', async () => {
    // settleMs 0: every computation is already settled, so only new markers bring a bucket back.
    const r = new RollupRefresher(store.client, { intervalMs: 1_000, settleMs: 0 });
    await insert(120, 'gamma'); // two minutes of gamma
    const first = await r.refreshNow();
    expect(first?.computed).toBeGreaterThanOrEqual(2);
    expect((await r.refreshNow())?.computed).toBe(0);
    await insert(1, 'gamma'); // one more minute bucket
    expect((await r.refreshNow())?.computed).toBe(1);
    expect(await total('gamma')).toBe(121);
    await r.close();
  });

  it('on its own schedule it leaves the minute still being written for later; asked now, it includes it', async () => {
    // Away from a minute's end, so "the current minute" is the same for the insert and the cycle.
    await waitUntil('a minute not about to end', () => Date.now() % 60_000 < 45_000, 20_000, 200);
    const r = new RollupRefresher(store.client, { intervalMs: 1_000, settleMs: 90_000 });
    const now = Date.now();
    const row = (id: string, ts: number): NormalizedEntry => ({ id, tenant: 'delta', type: 'log', ts, receivedAt: now, app: 'a', source: 's', labels: {}, name: '', value: null, unit: '', level: 'info', message: 'm', data: {} });
    await store.insert('telemetry', [toRow(row('past', now - 5 * 60_000), 0, offset++), toRow(row('open', now), 0, offset++)], `refresher:${offset}`);
    const scheduled = await r.refreshNow({ includeOpen: false });
    expect(scheduled?.computed).toBeGreaterThanOrEqual(1);
    expect(await total('delta')).toBe(1);
    await r.refreshNow();
    expect(await total('delta')).toBe(2);
    await r.close();
  });

  it('started on its timer and asked for a cycle at once, the cycles run one at a time and both finish', async () => {
    const r = new RollupRefresher(store.client, { intervalMs: 50, settleMs: 1_000 });
    await insert(10, 'beta');
    r.start();
    const [a, b] = await Promise.all([r.refreshNow(), r.refreshNow()]);
    expect(a).toBeDefined();
    expect(b).toBeDefined();
    expect(await total('beta')).toBe(10);
    expect(r.status().lastError).toBeUndefined();
    await r.close();
    expect(await r.refreshNow()).toBeUndefined();
  });
});
