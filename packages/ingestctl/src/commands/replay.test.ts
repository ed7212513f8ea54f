import { describe, expect, it } from 'vitest';
import type { ReplayPlan } from '@ingest/contracts';
import { runCli } from '../main.ts';
import { UsageError } from '../cli.ts';
import { formatPlan, formatSummary, replayRequest, whoAmI } from './replay.ts';
import { formatDiff } from './shadow.ts';

const env = { USER: 'oncall', SINK_URL: 'http://127.0.0.1:9' };

async function ctl(args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(args, { out: (s) => out.push(s), err: (s) => err.push(s), env });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('ingestctl replay options', () => {
  it('builds a plan request by default and a run only with --yes', () => {
    const plan = replayRequest(['--from=10', '--to=20', '--shadow'], env);
    expect(plan).toEqual({
      kind: 'start',
      json: false,
      body: { mode: 'plan', from: '10', to: '20', who: 'oncall', args: ['replay', '--from=10', '--to=20', '--shadow'] },
    });
    const run = replayRequest(['--from', '2026-11-20T10:00:00Z', '--to=latest', '--shadow', '--yes', '--json', '--partition', '1', '--partition=2,3', '--tenant', 'acme'], env);
    expect(run).toMatchObject({ kind: 'start', json: true, body: { mode: 'run', from: '2026-11-20T10:00:00Z', to: 'latest', partitions: [1, 2, 3], tenant: 'acme' } });
  });

  it('refuses to run without --shadow, --from or --to, and names a bad partition', () => {
    expect(() => replayRequest(['--from=1', '--to=2'], env)).toThrow(UsageError);
    expect(() => replayRequest(['--from=1', '--to=2'], env)).toThrow(/--shadow/);
    expect(() => replayRequest(['--to=2', '--shadow'], env)).toThrow(/--from/);
    expect(() => replayRequest(['--from=1', '--shadow'], env)).toThrow(/--to/);
    expect(() => replayRequest(['--from=1', '--to=2', '--shadow', '--partition=x'], env)).toThrow(/--partition=x/);
    expect(() => replayRequest(['--from=1', '--to=2', '--shadow', '--bogus'], env)).toThrow(UsageError);
  });

  it('passes the target table through for the sink writer to refuse if it is not a shadow table', () => {
    expect(replayRequest(['--from=1', '--to=2', '--shadow', '--table=telemetry'], env)).toMatchObject({ body: { target: 'telemetry' } });
  });

  it('has watch, cancel and jobs modes', () => {
    expect(replayRequest(['--watch', 'abc'], env)).toEqual({ kind: 'watch', id: 'abc', json: false });
    expect(replayRequest(['--cancel=abc', '--json'], env)).toEqual({ kind: 'cancel', id: 'abc', json: true });
    expect(replayRequest(['--jobs'], env)).toEqual({ kind: 'jobs', json: false });
  });

  it('knows who runs it', () => {
    expect(whoAmI({ USER: 'alice' })).toBe('alice');
    expect(whoAmI({ LOGNAME: 'bob' })).toBe('bob');
    expect(whoAmI({}).length).toBeGreaterThan(0);
  });

  it('exit codes: usage 2, help 0, sink writer unreachable 3', async () => {
    expect((await ctl(['replay', '--from=1', '--to=2'])).code).toBe(2);
    expect((await ctl(['replay', '--help'])).code).toBe(0);
    expect((await ctl(['replay', '--help'])).out).toContain('BOTH ends are included');
    const down = await ctl(['replay', '--from=1', '--to=2', '--shadow']);
    expect(down.code).toBe(3);
    expect(down.err).toContain('cannot reach the sink writer at http://127.0.0.1:9');
    expect((await ctl(['shadow', 'promote'])).code).toBe(2);
    expect((await ctl(['shadow', 'promote', '--day=2026-02-30'])).err).toContain('not a calendar day');
    expect((await ctl(['shadow', 'frobnicate'])).code).toBe(2);
  });
});

const plan: ReplayPlan = {
  topic: 'telemetry.v2',
  target: 'telemetry_shadow',
  tenant: null,
  window: { from: '100', to: '199', meaning: 'offsets are per partition and both ends are included' },
  inclusive: 'first and last offsets both included',
  partitions: [
    { partition: 1, retained: { low: 0, high: 500 }, firstOffset: 100, lastOffset: 199, resolution: { from: 'offset 100 (as given)', to: 'offset 199 (as given)' }, entries: 100, toInsert: 90, duplicates: 10, undecodable: 0, logTime: { first: '2026-11-20T10:00:00.000Z', last: '2026-11-20T10:05:00.000Z' } },
  ],
  entries: 100,
  toInsert: 90,
  duplicates: 10,
  undecodable: 0,
  eventWindow: null,
  inEventWindow: null,
  outsideEventWindow: 0,
  toInsertExact: true,
  tenants: [{ tenant: 'acme', entries: 100, toInsert: 90, duplicates: 10 }],
  logTime: { first: '2026-11-20T10:00:00.000Z', last: '2026-11-20T10:05:00.000Z' },
  eventTime: { min: '2026-11-20T09:59:00.000Z', max: '2026-11-20T10:05:00.000Z' },
  eventDays: [{ day: '2026-11-20', entries: 100 }],
  replayedBefore: true,
  previousRuns: [{ runId: 'r1', partition: 1, firstOffset: 150, lastOffset: 300, status: 'done', who: 'bob', startedAt: 0, tenant: '', inserted: 10 }],
  writes: 'nothing',
};

describe('ingestctl replay --event-from/--event-to', () => {
  it('sends the event window and scans all retained log unless --from/--to narrow it', () => {
    const r = replayRequest(['--event-from=2026-11-20T10:00:00Z', '--event-to=2026-11-20T11:00:00Z', '--shadow'], env);
    expect(r).toMatchObject({ kind: 'start', body: { mode: 'plan', from: 'earliest', to: 'latest', eventFrom: '2026-11-20T10:00:00Z', eventTo: '2026-11-20T11:00:00Z' } });
    const narrow = replayRequest(['--event-from=2026-11-20T10:00:00Z', '--event-to=2026-11-20T11:00:00Z', '--from=100', '--to=200', '--shadow'], env);
    expect(narrow).toMatchObject({ body: { from: '100', to: '200' } });
    expect(() => replayRequest(['--event-from=2026-11-20T10:00:00Z', '--shadow'], env)).toThrow(UsageError);
  });

  it('the plan says how many scanned entries are in the event window', () => {
    const s = formatPlan({ ...plan, eventWindow: { from: '2026-11-20T10:00:00.000Z', to: '2026-11-20T11:00:00.000Z' }, inEventWindow: 40, outsideEventWindow: 60 });
    expect(s).toContain('scanned       100 entries in the log range: 40 in the event window, 60 outside it');
  });
});

describe('ingestctl replay output', () => {

  it('the plan names topic, target, exact inclusive ranges, counts, time window and earlier runs', () => {
    const s = formatPlan(plan);
    for (const want of ['nothing has been written', 'telemetry.v2', 'telemetry_shadow', '100..199', 'both ends are included', 'acme', '2026-11-20T10:00:00.000Z', 'replayed before: YES', 'r1', 'bob', 'event days    2026-11-20 (100)']) {
      expect(s).toContain(want);
    }
  });

  it('the summary gives read, inserted, skipped and dead-lettered', () => {
    const s = formatSummary({
      runId: 'r2', status: 'done', topic: 't', target: 'telemetry_shadow', tenant: null, read: 100, inserted: 90, skippedDuplicates: 10, deadLettered: 0, outsideEventWindow: 0, deadLetterSample: [],
      partitions: [{ partition: 1, firstOffset: 100, lastOffset: 199, doneThrough: 199, read: 100, inserted: 90, skippedDuplicates: 10, deadLettered: 0 }],
      tenants: [{ tenant: 'acme', read: 100, inserted: 90, skippedDuplicates: 10 }], eventDays: [{ day: '2026-11-20', entries: 100 }], durationMs: 1200,
      logTime: { first: '2026-11-20T10:00:00.000Z', last: '2026-11-20T10:05:00.000Z' }, startedAt: '2026-11-22T10:00:00.000Z', finishedAt: '2026-11-22T10:00:01.200Z',
    });
    expect(s).toContain('read 100 · inserted 90 · skipped as duplicates 10 · dead-lettered (undecodable, not inserted) 0');
    expect(s).toContain('ingestctl shadow diff --day 2026-11-20');
  });

  it('diff marks differing buckets and says whether the tables are identical', () => {
    const row = { day: '2026-11-20', tenant: 'acme', type: 'log', hour: '2026-11-20T10:00:00.000Z', liveCount: 5, shadowCount: 5, liveChecksum: '1', shadowChecksum: '1', equal: true };
    const d = { live: 'telemetry', shadow: 'telemetry_shadow', tenant: null, days: ['2026-11-20'], equal: false, totals: { live: 5, shadow: 8, buckets: 2, differing: 1 }, rows: [row, { ...row, hour: '2026-11-20T11:00:00.000Z', liveCount: 0, shadowCount: 3, liveChecksum: '0', shadowChecksum: '9', equal: false }] };
    const s = formatDiff(d, false, false);
    expect(s.split('\n').filter((l) => l.startsWith('≠'))).toHaveLength(1);
    expect(s).toContain('DIFFERENT: 1 of 2 buckets differ');
    // Hour rows only (the per-tenant totals below them name the tenant too).
    expect(formatDiff(d, true, false).split('\n').filter((l) => l.includes('acme') && l.includes(':00'))).toHaveLength(1);
    expect(formatDiff({ ...d, equal: true, rows: [row], totals: { live: 5, shadow: 5, buckets: 1, differing: 0 } }, false, false)).toContain('IDENTICAL');
    expect(formatDiff(d, false, true)).toContain('\x1b[1;31m≠');
  });

  it('diff totals are per tenant: one tenant\'s loss is not netted against another\'s surplus', () => {
    const row = { day: '2026-11-20', tenant: 'acme', type: 'log', hour: '2026-11-20T10:00:00.000Z', liveCount: 100, shadowCount: 6767, liveChecksum: '1', shadowChecksum: '2', equal: false };
    const beta = { ...row, tenant: 'beta', liveCount: 50, shadowCount: 0, liveChecksum: '3', shadowChecksum: '0' };
    const d = { live: 'telemetry', shadow: 'telemetry_shadow', tenant: null, days: ['2026-11-20'], equal: false, totals: { live: 150, shadow: 6767, buckets: 2, differing: 2 }, rows: [row, beta] };
    const s = formatDiff(d, false, false);
    const line = (t: string) => s.split('\n').find((l) => l.includes(` ${t} `) && !l.includes(':00'));
    expect(line('acme')).toMatch(/acme\s+100\s+6767\s+\+6667\s+1/);
    expect(line('beta')).toMatch(/beta\s+50\s+0\s+-50\s+1/);
    expect(s).toContain('DIFFERENT: 2 of 2 buckets differ; all tenants together: live 150, shadow 6767 entries (shadow +6617; see per tenant above)');
  });
});
