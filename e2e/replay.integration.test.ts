import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DurableLog, StoredMessage } from '@ingest/log';
import type { RollupPage } from '@ingest/contracts';
import { decodeRow, type TelemetryStore } from '@ingest/storage';
import { logEntry, postIngest, startInProcessStack, type InProcessStack } from '@ingest/testkit';
import { EXIT, runCli } from '@ingest/ingestctl';
import { MODES, modeEnv, readTopic, sharedStore, tenantId, type Mode, type ModeEnv } from './helpers.ts';

const DAY_MS = 86_400_000;
const TOTAL = 20_000;
const PHASES = [9_000, 2_000, 9_000] as const;
const BATCH = 500;

let store: TelemetryStore;
beforeAll(async () => {
  store = await sharedStore();
});
afterAll(async () => {
  await store.close();
});

/**
 * Each mode gets its own event day: both modes share one chDB (one data directory per process),
 * and promote swaps a whole day partition, so the modes must never share a day.
 */
function eventDay(mode: Mode): number {
  return (Math.floor(Date.now() / DAY_MS) - (mode === 'embedded' ? 2 : 3)) * DAY_MS;
}
const isoDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);

interface Ctl {
  code: number;
  out: string;
  err: string;
}

async function ctl(sinkUrl: string, args: string[]): Promise<Ctl> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(args, { out: (s) => out.push(s), err: (s) => err.push(s), env: { SINK_URL: sinkUrl, USER: 'e2e-oncall' } });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

async function ctlJson<T>(sinkUrl: string, args: string[]): Promise<T> {
  const r = await ctl(sinkUrl, [...args, '--json']);
  expect(r.code, `${args.join(' ')}\n${r.err}\n${r.out}`).toBe(0);
  return JSON.parse(r.out) as T;
}

interface Plan {
  topic: string;
  target: string;
  entries: number;
  toInsert: number;
  duplicates: number;
  undecodable: number;
  partitions: Array<{ partition: number; firstOffset: number | null; lastOffset: number | null; entries: number; resolution: { from: string; to: string } }>;
  tenants: Array<{ tenant: string; entries: number; toInsert: number }>;
  replayedBefore: boolean;
  previousRuns: unknown[];
  eventDays: Array<{ day: string; entries: number }>;
}
interface Summary {
  status: string;
  read: number;
  inserted: number;
  skippedDuplicates: number;
  deadLettered: number;
  tenants: Array<{ tenant: string; read: number; inserted: number }>;
}
interface Diff {
  equal: boolean;
  totals: { live: number; shadow: number; buckets: number; differing: number };
  rows: Array<{ tenant: string; type: string; hour: string; liveCount: number; shadowCount: number; equal: boolean }>;
}

const idOf = (m: StoredMessage) => decodeRow(m.value, m.partition, m.offset).id;

describe.each(MODES)('replay into the shadow table (%s log, chDB)', (mode) => {
  let m: ModeEnv;
  let stack: InProcessStack;
  let log: DurableLog;
  let topic: string;
  let group: string;
  const tenants: string[] = [];
  const phaseIds: Array<Set<string>> = [new Set(), new Set(), new Set()];
  let keys: string[] = [];
  const marks: number[] = [];
  let messages: StoredMessage[] = [];
  const day = eventDay(mode);
  let sink: string;

  const ids = async (table: 'telemetry' | 'telemetry_shadow') => {
    const rs = await store.client.query({
      query: `SELECT tenant_id, id, log_partition, log_offset FROM ${table} FINAL WHERE tenant_id IN {t:Array(String)}`,
      query_params: { t: tenants },
      format: 'JSONEachRow',
    });
    return rs.json<{ tenant_id: string; id: string; log_partition: number; log_offset: number | string }>();
  };
  const committed = () => log.admin().committed(group, topic);

  beforeAll(async () => {
    m = await modeEnv(mode);
    stack = await startInProcessStack({ env: m.env, store });
    sink = stack.sinkUrl;
    log = m.readLog(stack.dataDir);
    topic = stack.config.backends.topic;
    group = stack.config.sink.loaderGroup;
    for (let i = 0; i < 4; i++) tenants.push(tenantId(`replay-${mode}-${i}`));
    keys = await Promise.all(tenants.map((t) => stack.tenant(t)));

    // The other mode's run left rows in the shared shadow table; start clean (this is `shadow drop`).
    const dropped = await ctl(sink, ['shadow', 'drop', '--yes']);
    expect(dropped.code, dropped.err).toBe(0);

    // Three phases with a pause and a time mark between them, so a time window can be checked
    // against exactly the entries of the middle phase.
    let i = 0;
    for (let phase = 0; phase < PHASES.length; phase++) {
      if (phase > 0) {
        await sleep(30);
        marks.push(Date.now());
        await sleep(30);
      }
      const end = i + (PHASES[phase] as number);
      const batches: Array<{ key: string; entries: Array<Record<string, unknown>> }> = [];
      for (; i < end; i += BATCH) {
        const entries = Array.from({ length: BATCH }, (_, j) => logEntry(i + j, { timestamp: day + (i + j) * 1000 }));
        for (const e of entries) phaseIds[phase]?.add(e['id'] as string);
        batches.push({ key: keys[(i / BATCH) % keys.length] as string, entries });
      }
      for (let b = 0; b < batches.length; b += 4) {
        const res = await Promise.all(batches.slice(b, b + 4).map((x) => postIngest(stack.edgeUrl, x.key, x.entries)));
        for (const r of res) expect(r.status, JSON.stringify(r.body)).toBe(200);
      }
    }
    await stack.waitLoaded();
    messages = (await readTopic(log, topic)).filter((x) => tenants.includes(x.key));
    expect(messages.length).toBe(TOTAL);
    expect((await ids('telemetry')).length).toBe(TOTAL);
  });

  afterAll(async () => {
    await log?.close();
    await stack?.close();
    await m?.stop();
  });

  it('a timestamp window resolves to the offsets that hold exactly those entries', async () => {
    const [t1, t2] = marks as [number, number];
    const plan = await ctlJson<Plan>(sink, ['replay', `--from=${new Date(t1).toISOString()}`, `--to=${new Date(t2).toISOString()}`, '--shadow']);
    expect(plan.entries).toBe(PHASES[1]);
    const inWindow = new Set<string>();
    for (const p of plan.partitions) {
      if (p.firstOffset === null || p.lastOffset === null) continue;
      expect(p.resolution.from).toContain(`offset ${p.firstOffset}`);
      for (const x of messages) if (x.partition === p.partition && x.offset >= p.firstOffset && x.offset <= p.lastOffset) inWindow.add(idOf(x));
    }
    expect(inWindow).toEqual(phaseIds[1]);

    // The human plan says the same thing in words.
    const human = await ctl(sink, ['replay', `--from=${new Date(t1).toISOString()}`, `--to=${new Date(t2).toISOString()}`, '--shadow']);
    expect(human.code).toBe(0);
    expect(human.out).toContain('REPLAY PLAN');
    expect(human.out).toContain('the first entry logged at or after it');
    expect(human.out).toContain('telemetry_shadow');
    expect((await ids('telemetry_shadow')).length).toBe(0);
  });

  it('replays a window deleted from live into the shadow only: exact entries, live rows and live group offsets untouched, idempotent', async () => {
    // The partition holding most of our entries; a window in its middle.
    const byPartition = new Map<number, StoredMessage[]>();
    for (const x of messages) byPartition.set(x.partition, [...(byPartition.get(x.partition) ?? []), x]);
    const [partition, inP] = [...byPartition].sort((a, b) => b[1].length - a[1].length)[0] as [number, StoredMessage[]];
    inP.sort((a, b) => a.offset - b.offset);
    const len = Math.min(3_000, Math.floor(inP.length / 2));
    const first = (inP[Math.floor(inP.length / 4)] as StoredMessage).offset;
    const last = first + len - 1;
    const windowMsgs = inP.filter((x) => x.offset >= first && x.offset <= last);
    expect(windowMsgs.length).toBe(len);
    const windowIds = new Set(windowMsgs.map(idOf));

    await store.client.command({
      query: 'ALTER TABLE telemetry DELETE WHERE tenant_id IN {t:Array(String)} AND log_partition = {p:UInt32} AND log_offset BETWEEN {a:UInt64} AND {b:UInt64}',
      query_params: { t: tenants, p: partition, a: first, b: last },
      clickhouse_settings: { mutations_sync: '2' },
    });
    expect((await ids('telemetry')).length).toBe(TOTAL - len);

    const liveBefore = await stack.rowStats();
    const offsetsBefore = await committed();
    expect(offsetsBefore.some((o) => o.offset > 0)).toBe(true);

    const args = ['replay', `--from=${first}`, `--to=${last}`, `--partition=${partition}`, '--shadow'];
    const plan = await ctlJson<Plan>(sink, args);
    expect(plan.target).toBe('telemetry_shadow');
    expect(plan.entries).toBe(len);
    expect(plan.toInsert).toBe(len);
    expect(plan.replayedBefore).toBe(false);
    expect(plan.partitions).toEqual([expect.objectContaining({ partition, firstOffset: first, lastOffset: last, entries: len })]);
    const perTenant = new Map<string, number>();
    for (const x of windowMsgs) perTenant.set(x.key, (perTenant.get(x.key) ?? 0) + 1);
    expect(new Map(plan.tenants.map((t) => [t.tenant, t.entries]))).toEqual(perTenant);
    expect(plan.eventDays).toEqual([{ day: isoDay(day), entries: len }]);

    const run = await ctlJson<Summary>(sink, [...args, '--yes']);
    expect(run).toMatchObject({ status: 'done', read: len, inserted: plan.toInsert, skippedDuplicates: 0, deadLettered: 0 });
    expect(run.inserted).toBe(plan.entries);

    const shadowRows = await ids('telemetry_shadow');
    expect(shadowRows.length).toBe(len);
    expect(new Set(shadowRows.map((r) => r.id))).toEqual(windowIds);
    for (const r of shadowRows) {
      expect(Number(r.log_partition)).toBe(partition);
      expect(Number(r.log_offset)).toBeGreaterThanOrEqual(first);
      expect(Number(r.log_offset)).toBeLessThanOrEqual(last);
    }
    expect(await store.rowStats('telemetry_shadow')).toEqual({ rows: len, distinctIds: len, final: len });

    // The live path saw nothing: same rows, same committed offsets of the live consumer group.
    expect(await stack.rowStats()).toEqual(liveBefore);
    expect(await committed()).toEqual(offsetsBefore);

    // Twice: the plan knows, and the run inserts nothing.
    const again = await ctlJson<Plan>(sink, args);
    expect(again).toMatchObject({ replayedBefore: true, entries: len, toInsert: 0, duplicates: len });
    const second = await ctlJson<Summary>(sink, [...args, '--yes']);
    expect(second).toMatchObject({ status: 'done', read: len, inserted: 0, skippedDuplicates: len, deadLettered: 0 });
    expect(await store.rowStats('telemetry_shadow')).toEqual({ rows: len, distinctIds: len, final: len });

    // A cleaned shadow table takes a fresh replay, although ClickHouse remembers the block hashes
    // of the deleted rows: the run-scoped token is new.
    await store.client.command({ query: 'ALTER TABLE telemetry_shadow DELETE WHERE tenant_id IN {t:Array(String)}', query_params: { t: tenants }, clickhouse_settings: { mutations_sync: '2' } });
    expect((await ids('telemetry_shadow')).length).toBe(0);
    const third = await ctlJson<Summary>(sink, [...args, '--yes']);
    expect(third).toMatchObject({ status: 'done', inserted: len, skippedDuplicates: 0 });
    expect(new Set((await ids('telemetry_shadow')).map((r) => r.id))).toEqual(windowIds);

    expect(await stack.rowStats()).toEqual(liveBefore);
    expect(await committed()).toEqual(offsetsBefore);

    // Human summary names the four numbers.
    const fourth = await ctl(sink, [...args, '--yes']);
    expect(fourth.code).toBe(0);
    expect(fourth.out).toMatch(new RegExp(`read ${len} · inserted 0 · skipped as duplicates ${len} · dead-lettered \\(undecodable, not inserted\\) 0`));
  });

  it('diff shows the gap, promote repairs the day, diff then shows none; every run and promote is audited', async () => {
    const day0 = isoDay(day);
    const liveBefore = (await ids('telemetry')).length;
    const gap = TOTAL - liveBefore;
    expect(gap).toBeGreaterThan(0);

    // promote replaces the whole day, so the shadow must hold the whole day: replay everything.
    const full = ['replay', '--from=earliest', '--to=latest', '--shadow'];
    const plan = await ctlJson<Plan>(sink, full);
    expect(plan.entries).toBe(TOTAL);
    const ours = plan.tenants.filter((t) => tenants.includes(t.tenant));
    expect(ours.reduce((a, t) => a + t.entries, 0)).toBe(TOTAL);
    expect(ours.reduce((a, t) => a + t.toInsert, 0)).toBe(TOTAL - gap);
    const run = await ctlJson<Summary>(sink, [...full, '--yes']);
    expect(run.inserted).toBe(plan.toInsert);
    expect(run.skippedDuplicates).toBe(plan.duplicates);
    expect(run.read).toBe(plan.entries);

    // DIFFERENT exits 1, like diff(1).
    const beforeRun = await ctl(sink, ['shadow', 'diff', `--day=${day0}`, '--json']);
    expect(beforeRun.code, beforeRun.err).toBe(EXIT.CHECK_FAILED);
    const before = JSON.parse(beforeRun.out) as Diff;
    expect(before.equal).toBe(false);
    expect(before.totals.shadow - before.totals.live).toBe(gap);
    expect(before.rows.filter((r) => !r.equal).reduce((a, r) => a + r.shadowCount - r.liveCount, 0)).toBe(gap);
    const humanDiff = await ctl(sink, ['shadow', 'diff', `--day=${day0}`, '--only-diff']);
    expect(humanDiff.code).toBe(EXIT.CHECK_FAILED);
    expect(humanDiff.out).toContain('DIFFERENT');
    expect(humanDiff.out).toContain('≠');

    const promotePlan = await ctlJson<{ executed: boolean; plan: { shadowOnly: number; liveOnly: number; liveRows: number; shadowRows: number } }>(sink, ['shadow', 'promote', `--day=${day0}`]);
    expect(promotePlan.executed).toBe(false);
    expect(promotePlan.plan).toMatchObject({ shadowOnly: gap, liveOnly: 0, liveRows: TOTAL - gap, shadowRows: TOTAL });
    expect((await ids('telemetry')).length).toBe(TOTAL - gap);

    const promoted = await ctlJson<{ executed: boolean; result: { liveEqualsShadow: boolean; liveRowsAfter: number } }>(sink, ['shadow', 'promote', `--day=${day0}`, '--yes']);
    expect(promoted.executed).toBe(true);
    expect(promoted.result).toMatchObject({ liveEqualsShadow: true, liveRowsAfter: TOTAL });

    const after = await ctlJson<Diff>(sink, ['shadow', 'diff', `--day=${day0}`]);
    expect(after.equal).toBe(true);
    expect(after.totals).toMatchObject({ live: TOTAL, shadow: TOTAL, differing: 0 });
    const liveIds = await ids('telemetry');
    expect(liveIds.length).toBe(TOTAL);
    expect(new Set(liveIds.map((r) => r.id)).size).toBe(TOTAL);
    for (const t of tenants) expect((await stack.rowStats(t)).final).toBe(messages.filter((x) => x.key === t).length);

    const audit = (await readFile(path.join(stack.dataDir, 'audit', 'shadow-ops.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { action: string; phase: string; who: string; args: string[]; plan?: unknown; result?: { inserted?: number; executed?: boolean } });
    const replays = audit.filter((a) => a.action === 'replay' && a.phase === 'end');
    expect(replays.length).toBeGreaterThanOrEqual(5);
    for (const a of replays) {
      expect(a.who).toBe('e2e-oncall');
      expect(a.args).toContain('--yes');
      expect(a.plan).toBeDefined();
      expect(typeof a.result?.inserted).toBe('number');
    }
    expect(audit.filter((a) => a.action === 'replay' && a.phase === 'start').length).toBe(replays.length);
    const promotes = audit.filter((a) => a.action === 'promote' && a.phase === 'end');
    expect(promotes).toEqual([expect.objectContaining({ who: 'e2e-oncall', result: expect.objectContaining({ executed: true }) })]);
    if (mode === 'kafka') {
      const published = (await readTopic(log, `${topic}.audit`)).map((x) => JSON.parse(x.value.toString('utf8')) as { action: string; phase: string });
      expect(published.length).toBe(audit.length);
      expect(published.filter((a) => a.action === 'promote').length).toBe(audit.filter((a) => a.action === 'promote').length);
    }
  });

  it('rollups (GET /v2/query?rollup=1m|1h) equal a FINAL aggregate of live after the deleted window, the replay, the promote and a producer retrying', async () => {
    // A producer's retry: metric points sent twice with the same ids (both acknowledged).
    const points = Array.from({ length: 40 }, (_, i) => ({ id: `rollup-${mode}-${i}`, type: 'metric', timestamp: day + 5_000 + i * 1_500, app: 'api', data: { name: `cpu${i % 2}`, value: i / 8, unit: 'ratio' }, labels: i % 2 ? { host: `h${i % 3}`, dc: 'x' } : { dc: 'x', host: `h${i % 3}` } }));
    for (let n = 0; n < 2; n++) {
      const r = await postIngest(stack.edgeUrl, keys[0] as string, points);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
    }
    await stack.waitLoaded();
    const admin = { 'x-ingest-internal-token': stack.config.sink.internalToken ?? '' };
    const refreshed = await fetch(new URL('/admin/v1/rollups/refresh', sink), { method: 'POST', headers: admin });
    expect(refreshed.status, await refreshed.clone().text()).toBe(200);

    for (const [i, tenant] of tenants.entries()) {
      for (const unit of ['1m', '1h'] as const) {
        const bucket = unit === '1h' ? 'toStartOfHour(ts)' : 'toStartOfMinute(ts)';
        const want = await (await store.client.query({
          query: `SELECT toUnixTimestamp(${bucket}) AS t, toString(type) AS type, toString(app) AS app, toString(level) AS level, count() AS n
                  FROM telemetry FINAL WHERE tenant_id = {t:String} GROUP BY t, type, app, level ORDER BY t DESC, type, app, level`,
          query_params: { t: tenant }, format: 'JSONEachRow',
        })).json<{ t: number; type: string; app: string; level: string; n: string }>();
        const res = await fetch(new URL(`/v2/query?rollup=${unit}`, stack.edgeUrl), { headers: { authorization: `Bearer ${keys[i] as string}` } });
        expect(res.status).toBe(200);
        const got = (await res.json()) as RollupPage;
        expect(got.counts).toEqual(want.map((r) => ({ time: new Date(Number(r.t) * 1000).toISOString(), type: r.type, app: r.app, level: r.level, count: Number(r.n) })));
        const total = got.counts.reduce((a, c) => a + c.count, 0);
        expect(total).toBe(messages.filter((x) => x.key === tenant).length + (i === 0 ? points.length : 0));
        if (i === 0) {
          // Sent twice, counted once; one series per label set whatever the key order.
          expect(got.metrics.reduce((a, m) => a + m.count, 0)).toBe(points.length);
          expect(got.metrics.reduce((a, m) => a + m.sum, 0)).toBeCloseTo(points.reduce((a, p) => a + p.data.value, 0), 9);
          if (unit === '1h') expect(got.metrics.length).toBe(6);
        } else expect(got.metrics).toEqual([]);
      }
    }
  });

  it('clear usage errors (exit 2) and refusals', async () => {
    const parts = await log.admin().partitions(topic);
    const p = parts.find((x) => x.high > x.low) ?? parts[0];
    if (!p) throw new Error('no partitions');

    const noShadow = await ctl(sink, ['replay', '--from=0', '--to=10']);
    expect(noShadow.code).toBe(2);
    expect(noShadow.err).toContain('--shadow');

    const backwards = await ctl(sink, ['replay', '--from=10', '--to=5', '--shadow']);
    expect(backwards.code).toBe(2);
    expect(backwards.err).toContain('is after --to');

    const outside = await ctl(sink, ['replay', `--from=${p.low}`, `--to=${p.high + 1000}`, `--partition=${p.partition}`, '--shadow']);
    expect(outside.code).toBe(2);
    expect(outside.err).toContain('outside the retained range');
    expect(outside.err).toContain(`partition ${p.partition}: ${p.low}..${p.high - 1}`);

    const unknown = await ctl(sink, ['replay', '--from=0', '--to=1', '--partition=99', '--shadow']);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toContain('unknown partition 99');

    const live = await ctl(sink, ['replay', '--from=earliest', '--to=latest', '--shadow', '--table=telemetry']);
    expect(live.code).toBe(2);
    expect(live.err).toContain('refusing target "telemetry"');

    const badTime = await ctl(sink, ['replay', '--from=yesterday', '--to=latest', '--shadow']);
    expect(badTime.code).toBe(2);
    expect(badTime.err).toContain('ISO-8601');

    // A shadow missing entries live has: promote would delete them, so it is refused.
    await store.client.command({ query: 'ALTER TABLE telemetry_shadow DELETE WHERE tenant_id = {t:String}', query_params: { t: tenants[0] }, clickhouse_settings: { mutations_sync: '2' } });
    const liveBefore = (await ids('telemetry')).length;
    const lossy = await ctl(sink, ['shadow', 'promote', `--day=${isoDay(day)}`, '--yes']);
    expect(lossy.code).toBe(1);
    expect(lossy.err).toContain('REPLACE PARTITION would delete them');
    expect((await ids('telemetry')).length).toBe(liveBefore);

    const emptyDay = await ctl(sink, ['shadow', 'promote', '--day=2001-01-01', '--yes']);
    expect(emptyDay.code).toBe(2);
    expect(emptyDay.err).toContain('holds nothing');

    const down = await ctl('http://127.0.0.1:9', ['replay', '--from=0', '--to=1', '--shadow']);
    expect(down.code).toBe(EXIT.UNREACHABLE);
    expect(down.err).toContain('cannot reach the sink writer');
  });
});
