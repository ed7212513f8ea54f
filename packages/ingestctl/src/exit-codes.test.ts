import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { addTenantKey } from '@ingest/tenants';
import { EXIT, EXIT_MEANINGS, exitCodeMarkdown } from './exit-codes.ts';
import { ctl, DEAD_URL, fakeServer, type FakeAnswer, type FakeServer } from '../test/cli-fakes.ts';

const SRC = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(SRC, '../../..');

const servers: FakeServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});
async function serve(answer: (route: string, url: URL) => FakeAnswer | undefined): Promise<string> {
  const s = await fakeServer(answer);
  servers.push(s);
  return s.url;
}

async function sourceFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await sourceFiles(p)));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

describe('the exit-code table', () => {
  it('is one table of distinct codes 0..4, printed by ingestctl --help', async () => {
    expect(EXIT_MEANINGS.map((e) => e.code)).toEqual([0, 1, 2, 3, 4]);
    expect(new Set(EXIT_MEANINGS.map((e) => e.name))).toEqual(new Set(Object.keys(EXIT)));
    const help = await ctl({}, '--help');
    expect(help.code).toBe(EXIT.OK);
    for (const e of EXIT_MEANINGS) expect(help.out).toContain(`  ${e.code}  ${e.name.padEnd(12)} ${e.meaning}`);
  });

  it('README.md and the cutover and replay runbooks carry the same table, verbatim', async () => {
    for (const doc of ['README.md', 'runbooks/cutover.md', 'runbooks/replay.md']) {
      expect(await readFile(path.join(ROOT, doc), 'utf8'), doc).toContain(exitCodeMarkdown());
    }
  });

  it('no command returns or exits with a bare number: every exit path goes through EXIT', async () => {
    const offenders: string[] = [];
    for (const file of await sourceFiles(SRC)) {
      const lines = (await readFile(file, 'utf8')).split('\n');
      lines.forEach((line, i) => {
        // `return 1;`, `return ok ? 0 : 1;`, `process.exit(1)` (a comparator's `? -1 : 1))` is not an exit).
        if (/\breturn\s+\d+\s*;|\breturn\b[^;]*\?\s*\d+\s*:\s*\d+\s*;|process\.exit\(\s*\d+\s*\)/.test(line)) offenders.push(`${path.relative(SRC, file)}:${i + 1}: ${line.trim()}`);
      });
    }
    expect(offenders).toEqual([]);
  });
});

describe('each command exits with a code from the table', () => {
  it('usage errors are 2; help is 0; unknown command is 2', async () => {
    for (const argv of [['frobnicate'], ['query'], ['replay', '--from=1', '--to=2'], ['shadow', 'promote'], ['cutover', 'flip'], ['tenants'], ['status', '--bogus']]) {
      expect((await ctl({}, ...argv)).code, argv.join(' ')).toBe(EXIT.USAGE);
    }
    for (const c of ['tenants', 'query', 'status', 'cutover', 'replay', 'shadow']) expect((await ctl({}, c, '--help')).code).toBe(EXIT.OK);
  });

  it('a service that does not answer is 3, for every command that calls one', async () => {
    const env = { SINK_URL: DEAD_URL, EDGE_URL: DEAD_URL, NORMALIZER_URL: DEAD_URL, USER: 't' };
    for (const argv of [
      ['status'],
      ['query', '--tenant', 'acme', '--count'],
      ['replay', '--from=1', '--to=2', '--shadow'],
      ['replay', '--jobs'],
      ['shadow', 'diff'],
      ['shadow', 'promote', '--day=2026-11-20'],
      ['shadow', 'drop'],
    ]) {
      const r = await ctl(env, ...argv);
      expect(r.code, `${argv.join(' ')}: ${r.err}`).toBe(EXIT.UNREACHABLE);
    }
  });

  it('query: a server error is 4, a request the server calls bad is 2', async () => {
    const fail = await serve(() => ({ status: 500, body: { error: { code: 'X', message: 'boom' } } }));
    expect((await ctl({ SINK_URL: fail }, 'query', '--tenant', 'a', '--count')).code).toBe(EXIT.FAILED);
    const bad = await serve(() => ({ status: 400, body: { error: { code: 'X', message: 'bad type' } } }));
    expect((await ctl({ SINK_URL: bad }, 'query', '--tenant', 'a', '--count')).code).toBe(EXIT.USAGE);
  });

  it('replay: a plan with no entries is 1 (nothing to replay), one with entries is 0, a failed run is 4', async () => {
    let entries = 0;
    let kind: 'plan' | 'run' = 'plan';
    let state = 'done';
    const resolved = { topic: 't', target: 'telemetry_shadow', offsets: entries, partitions: [] };
    const plan = () => ({
      topic: 't', target: 'telemetry_shadow', tenant: null, window: { from: 'a', to: 'b', meaning: 'm' }, inclusive: 'x', partitions: [], entries, toInsert: entries, duplicates: 0, undecodable: 0,
      toInsertExact: true, tenants: [], logTime: { first: null, last: null }, eventTime: { min: null, max: null }, eventDays: [], replayedBefore: false, previousRuns: [], writes: 'nothing',
    });
    const summary = () => ({
      runId: 'r', status: state, topic: 't', target: 'telemetry_shadow', tenant: null, read: entries, inserted: entries, skippedDuplicates: 0, deadLettered: 0, deadLetterSample: [], partitions: [], tenants: [], eventDays: [],
      durationMs: 1, logTime: { first: null, last: null }, startedAt: '', finishedAt: '',
    });
    const job = () => ({ id: 'j1', kind, state, who: 't', progress: { total: entries, done: entries, rate: 0, startedAt: '' }, resolved, ...(kind === 'plan' ? { plan: plan() } : { summary: summary() }) });
    const sink = await serve((route) => (route === 'POST /admin/v1/replay/jobs' ? { status: 202, body: job() } : route === 'GET /admin/v1/replay/jobs/j1' ? { status: 200, body: job() } : undefined));
    const env = { SINK_URL: sink, USER: 't' };
    const none = await ctl(env, 'replay', '--from=2026-01-01T00:00:00Z', '--to=2026-01-01T01:00:00Z', '--shadow');
    expect(none.code).toBe(EXIT.CHECK_FAILED);
    expect(none.err).toContain('nothing to replay');
    entries = 5;
    expect((await ctl(env, 'replay', '--from=1', '--to=5', '--shadow')).code).toBe(EXIT.OK);
    kind = 'run';
    expect((await ctl(env, 'replay', '--from=1', '--to=5', '--shadow', '--yes', '--json')).code).toBe(EXIT.OK);
    state = 'failed';
    expect((await ctl(env, 'replay', '--from=1', '--to=5', '--shadow', '--yes', '--json')).code).toBe(EXIT.FAILED);
  });

  it('shadow promote: a plan that --yes would refuse is 1; one it would carry out is 0; a 409 refusal is 1', async () => {
    const planOf = (liveOnly: number, shadowRows: number) => ({
      executed: false,
      plan: { day: 20261120, partitionId: '20261120', source: 'telemetry_shadow', target: 'telemetry', sql: 'ALTER …', liveRows: 10, shadowRows, shadowOnly: 0, liveOnly, tenants: [] },
    });
    let answer: FakeAnswer = { status: 200, body: planOf(3, 10) };
    const sink = await serve((route) => (route === 'POST /admin/v1/shadow/promote' ? answer : undefined));
    const env = { SINK_URL: sink, USER: 't' };
    const lossy = await ctl(env, 'shadow', 'promote', '--day=2026-11-20');
    expect(lossy.code).toBe(EXIT.CHECK_FAILED);
    expect(lossy.out).toContain('REFUSED: 3 live entries are missing from the shadow');
    expect((await ctl(env, 'shadow', 'promote', '--day=2026-11-20', '--json')).code).toBe(EXIT.CHECK_FAILED);
    expect((await ctl(env, 'shadow', 'promote', '--day=2026-11-20', '--allow-loss')).code).toBe(EXIT.OK);
    answer = { status: 200, body: planOf(0, 0) };
    expect((await ctl(env, 'shadow', 'promote', '--day=2026-11-20')).code).toBe(EXIT.CHECK_FAILED);
    answer = { status: 200, body: planOf(0, 10) };
    expect((await ctl(env, 'shadow', 'promote', '--day=2026-11-20')).code).toBe(EXIT.OK);
    answer = { status: 409, body: { error: { code: 'X', message: 'another shadow operation is in progress' } } };
    expect((await ctl(env, 'shadow', 'promote', '--day=2026-11-20', '--yes')).code).toBe(EXIT.CHECK_FAILED);
  });

  it('shadow diff: 0 when identical, 1 when different (like diff(1))', async () => {
    let equal = false;
    const sink = await serve(() => ({ status: 200, body: { live: 'telemetry', shadow: 'telemetry_shadow', tenant: null, days: ['2026-11-20'], equal, totals: { live: 1, shadow: 2, buckets: 1, differing: equal ? 0 : 1 }, rows: [] } }));
    expect((await ctl({ SINK_URL: sink }, 'shadow', 'diff')).code).toBe(EXIT.CHECK_FAILED);
    equal = true;
    expect((await ctl({ SINK_URL: sink }, 'shadow', 'diff')).code).toBe(EXIT.OK);
  });

  it('cutover status <tenant>: 0 only for parity OK; MISMATCH and "not compared" are 1; legacy counts down is 3', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'ingestctl-exit-'));
    await addTenantKey(path.join(dir, 'tenants.json'), 'acme');
    const sink = await serve((route) => (route === 'GET /admin/v1/count' ? { status: 200, body: { count: 0 } } : undefined));
    let buckets: unknown[] = [];
    const legacy = await serve(() => ({ status: 200, body: { buckets } }));
    const env = { INGEST_DATA_DIR: dir, SINK_URL: sink, LEGACY_COUNT_URL: legacy };
    expect((await ctl(env, 'cutover', 'status', 'acme', '--hours', '1')).code).toBe(EXIT.OK);
    buckets = [{ hour: new Date(Math.floor(Date.now() / 3_600_000) * 3_600_000).toISOString(), type: 'log', count: 5 }];
    const mismatch = await ctl(env, 'cutover', 'status', 'acme', '--hours', '1');
    expect(mismatch.out).toContain('parity: MISMATCH');
    expect(mismatch.code).toBe(EXIT.CHECK_FAILED);
    expect((await ctl(env, 'cutover', 'status', 'acme', '--hours', '1', '--json')).code).toBe(EXIT.CHECK_FAILED);
    expect((await ctl({ ...env, LEGACY_COUNT_URL: '' }, 'cutover', 'status', 'acme', '--hours', '1')).code).toBe(EXIT.CHECK_FAILED);
    expect((await ctl({ ...env, LEGACY_COUNT_URL: DEAD_URL }, 'cutover', 'status', 'acme', '--hours', '1')).code).toBe(EXIT.UNREACHABLE);
  });

  it('tenants revoke-key of a key that is not there is 1; cutover add of an unknown tenant is 1', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'ingestctl-exit-'));
    await addTenantKey(path.join(dir, 'tenants.json'), 'acme');
    const env = { INGEST_DATA_DIR: dir, CUTOVER_EDGE_SETTLE_MS: '0', CUTOVER_NGINX_DIR: path.join(dir, 'nginx') };
    expect((await ctl(env, 'tenants', 'revoke-key', 'acme', 'ik_nothere1')).code).toBe(EXIT.CHECK_FAILED);
    expect((await ctl(env, 'cutover', 'add', 'nobody')).code).toBe(EXIT.CHECK_FAILED);
  });
});
