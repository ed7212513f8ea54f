/**
 * `pnpm bench`: entries per CPU-second of the product, next to a bare Node server on the same
 * workload, so the figure means something on a shared or noisy machine. See BENCHMARKS.md.
 *
 *   pnpm bench [--quick] [--rounds 3] [--seconds 15] [--latency-seconds 8] [--warmup-seconds 2]
 *              [--systems e2e,ack,split,ceiling,ceiling+fsync] [--json]
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { positiveArg } from './bench/args.ts';
import { Pool } from 'undici';
import { waitLoaded } from '@ingest/testkit';
import { closedLoop, openLoop, type PhaseResult } from './bench/load.ts';
import { clockTicksPerSecond, cpuSnapshot, cpuTicksBetween, peakRss, type ProcessMemory } from './bench/proc.ts';
import { median, percentile } from './bench/stats.ts';
import { SYSTEM_DESCRIPTIONS, SYSTEMS, startSystem, type RunningSystem, type SystemName } from './bench/systems.ts';
import { RequestBodies, WORKLOAD } from './bench/workload.ts';

const HELP = `pnpm bench — entries per CPU-second of the product and of a bare node:http server, same workload

  --quick                 1 round, short phases: under 90 s in all
  --rounds N              rounds of all systems, alternating (default 3)
  --seconds S             max-rate phase per system and round (default 15)
  --latency-seconds S     latency phase at half the max rate (default 8)
  --warmup-seconds S      unmeasured load before the max-rate phase (default 2)
  --systems a,b           subset of ${SYSTEMS.join(',')}
  --json                  one JSON object on stdout instead of the table
  -h, --help

Workload: ${WORKLOAD.entriesPerRequest} entries/request (~400 B each, mixed types, unique ids), ${WORKLOAD.connections} connections.
The last line: bench: e2e <N> entries/cpu-s, ack <N>, split <N>, ceiling <N>, ratio <e2e/ceiling>`;

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    seconds: { type: 'string' },
    'latency-seconds': { type: 'string' },
    'warmup-seconds': { type: 'string' },
    systems: { type: 'string' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  console.log(HELP);
  process.exit(0);
}

const settings = {
  rounds: positiveArg('bench', 'rounds', values.rounds, values.quick ? 1 : 3, { integer: true }),
  seconds: positiveArg('bench', 'seconds', values.seconds, values.quick ? 4 : 15),
  latencySeconds: positiveArg('bench', 'latency-seconds', values['latency-seconds'], values.quick ? 2 : 8),
  warmupSeconds: positiveArg('bench', 'warmup-seconds', values['warmup-seconds'], values.quick ? 1 : 2),
};
const systems = (values.systems?.split(',').map((s) => s.trim()) ?? [...SYSTEMS]) as SystemName[];
for (const s of systems) {
  if (!SYSTEMS.includes(s)) {
    console.error(`bench: unknown system "${s}"; choose from ${SYSTEMS.join(', ')}`);
    process.exit(2);
  }
}
// How long loading may take after the load stops before the run is called broken.
const LOAD_WAIT_MS = 300_000;
// Requests allowed to wait in the open loop: 32 per connection is far beyond half the max rate.
const MAX_WAITING = WORKLOAD.connections * 32;

const tty = process.stderr.isTTY;
function progress(line: string): void {
  if (tty) process.stderr.write(`\r\x1b[K${line}`);
}

interface Round {
  round: number;
  /** The measured window: the max-rate phase plus, for systems that load, until the rows are loaded. */
  windowSeconds: number;
  loadSeconds: number;
  drainSeconds: number;
  entries: number;
  requests: number;
  errors: number;
  firstError?: string;
  cpuSeconds: number;
  entriesPerSecond: number;
  entriesPerCpuSecond: number;
  /** The generator's own CPU in the window (this process); not part of the figure. */
  generatorCpuSeconds: number;
  latency: { entriesPerSecond: number; requestsPerSecond: number; requests: number; errors: number; skipped: number; p50Ms: number; p99Ms: number };
  peakRss: ProcessMemory[];
  rows?: { accepted: number; final: number };
  /** Outside the window: how long the system took to answer /healthz, and to stop. */
  startSeconds: number;
  stopSeconds: number;
}

class RowsMismatch extends Error {}

let current: RunningSystem | undefined;
let interrupted = false;
const onSignal = () => {
  if (interrupted) return;
  interrupted = true;
  if (tty) process.stderr.write('\n');
  console.error('bench: interrupted; stopping the system under test');
  void (current?.stop() ?? Promise.resolve()).finally(() => process.exit(130));
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

async function rowStats(sink: NonNullable<RunningSystem['sink']>): Promise<number> {
  const r = await fetch(`${sink.url}/admin/v1/row-stats?tenant=bench`, { headers: sink.headers });
  if (!r.ok) throw new Error(`row-stats answered ${r.status}: ${await r.text()}`);
  return ((await r.json()) as { final: number }).final;
}

async function runOne(name: SystemName, round: number): Promise<Round> {
  const label = `round ${round}/${settings.rounds} ${name}`;
  progress(`${label}: starting`);
  const tStart = performance.now();
  const sys = await startSystem(name);
  const startSeconds = (performance.now() - tStart) / 1000;
  current = sys;
  let result: Round | undefined;
  const pool = new Pool(sys.url, { connections: WORKLOAD.connections });
  let failed = false;
  try {
    const bodies = new RequestBodies(`${name.replace(/\W/g, '')}${round}${Date.now().toString(36)}`);
    const target = { pool, bodies, headers: sys.headers };
    const loaded = async () => {
      if (sys.sink) await waitLoaded(sys.sink.url, LOAD_WAIT_MS, sys.sink.headers);
    };
    const tick = (phase: string) => (r: PhaseResult) => progress(`${label}: ${phase} ${r.seconds.toFixed(0)} s, ${Math.round(r.entries / Math.max(r.seconds, 0.001)).toLocaleString('en')} entries/s`);

    progress(`${label}: warm-up`);
    const warm = await closedLoop(target, { seconds: settings.warmupSeconds, connections: WORKLOAD.connections });
    // Rows of the warm-up still loading would be charged to the window without being counted in it.
    await loaded();

    const clk = clockTicksPerSecond();
    const before = cpuSnapshot(sys.pid);
    const genBefore = process.cpuUsage();
    const t0 = performance.now();
    const max = await closedLoop(target, { seconds: settings.seconds, connections: WORKLOAD.connections, onTick: tick('max rate') });
    const tLoad = performance.now();
    if (sys.sink) progress(`${label}: waiting for the loader`);
    await loaded();
    const t1 = performance.now();
    const cpuSeconds = cpuTicksBetween(before, cpuSnapshot(sys.pid)) / clk;
    const gen = process.cpuUsage(genBefore);
    const windowSeconds = (t1 - t0) / 1000;
    const entriesPerSecond = max.entries / windowSeconds;

    // Half the rate the system sustained (end to end for systems that load), as whole requests.
    const halfRate = entriesPerSecond / 2;
    const requestsPerSecond = Math.max(1, halfRate / WORKLOAD.entriesPerRequest);
    const lat = await openLoop(target, { seconds: settings.latencySeconds, requestsPerSecond, maxWaiting: MAX_WAITING, onTick: tick('half rate') });
    const sorted = [...lat.latenciesMs].sort((a, b) => a - b);

    let rows: Round['rows'];
    if (sys.sink) {
      progress(`${label}: checking rows`);
      await loaded();
      const accepted = warm.entries + max.entries + lat.entries;
      const final = await rowStats(sys.sink);
      rows = { accepted, final };
      if (final !== accepted) throw new RowsMismatch(`${name}, round ${round}: ${accepted} entries acknowledged but ${final} rows in the store (row-stats final); service logs in ${sys.logDir}`);
    }
    result = {
      round,
      startSeconds,
      stopSeconds: NaN,
      windowSeconds,
      loadSeconds: (tLoad - t0) / 1000,
      drainSeconds: (t1 - tLoad) / 1000,
      entries: max.entries,
      requests: max.requests,
      errors: max.errors + lat.errors + warm.errors,
      ...(max.firstError ?? lat.firstError ?? warm.firstError ? { firstError: max.firstError ?? lat.firstError ?? warm.firstError } : {}),
      cpuSeconds,
      entriesPerSecond,
      entriesPerCpuSecond: max.entries / cpuSeconds,
      generatorCpuSeconds: (gen.user + gen.system) / 1e6,
      latency: { entriesPerSecond: requestsPerSecond * WORKLOAD.entriesPerRequest, requestsPerSecond, requests: lat.requests, errors: lat.errors, skipped: lat.skipped, p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99) },
      peakRss: peakRss(sys.pid),
      ...(rows ? { rows } : {}),
    };
    return result;
  } catch (e) {
    failed = true;
    if (tty) process.stderr.write('\n');
    console.error(`bench: ${name} failed in round ${round}; its data and logs are kept in ${sys.logDir}`);
    throw e;
  } finally {
    progress(`${label}: stopping`);
    const tStop = performance.now();
    await pool.close();
    // A failed run keeps its data directory (logs, log segments, chDB) for a look.
    await sys.stop({ keepData: failed });
    if (result) result.stopSeconds = (performance.now() - tStop) / 1000;
    current = undefined;
  }
}

interface Summary {
  rounds: Round[];
  entriesPerSecond: number;
  entriesPerCpuSecond: number;
  ratioToCeiling: number;
  p50Ms: number;
  p99Ms: number;
  latencyEntriesPerSecond: number;
  errors: number;
  /** Per process name, the largest peak RSS over the rounds, and how many processes had that name. */
  peakRss: Array<{ name: string; count: number; peakRssBytes: number }>;
}

function summarize(rounds: Round[]): Omit<Summary, 'ratioToCeiling'> {
  const byName = new Map<string, { count: number; peakRssBytes: number }>();
  for (const r of rounds) {
    const counts = new Map<string, number>();
    for (const p of r.peakRss) counts.set(p.name, (counts.get(p.name) ?? 0) + 1);
    for (const p of r.peakRss) {
      const e = byName.get(p.name) ?? { count: 0, peakRssBytes: 0 };
      byName.set(p.name, { count: Math.max(e.count, counts.get(p.name) ?? 0), peakRssBytes: Math.max(e.peakRssBytes, p.peakRssBytes) });
    }
  }
  return {
    rounds,
    entriesPerSecond: median(rounds.map((r) => r.entriesPerSecond)),
    entriesPerCpuSecond: median(rounds.map((r) => r.entriesPerCpuSecond)),
    p50Ms: median(rounds.map((r) => r.latency.p50Ms)),
    p99Ms: median(rounds.map((r) => r.latency.p99Ms)),
    latencyEntriesPerSecond: median(rounds.map((r) => r.latency.entriesPerSecond)),
    errors: rounds.reduce((a, r) => a + r.errors, 0),
    peakRss: [...byName].map(([name, v]) => ({ name, ...v })).sort((a, b) => b.peakRssBytes - a.peakRssBytes),
  };
}

const int = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en') : '–');
const ms = (n: number) => (Number.isFinite(n) ? n.toFixed(n < 10 ? 1 : 0) : '–');
const ratio = (n: number) => (Number.isFinite(n) ? n.toPrecision(2) : '–');
const mib = (b: number) => Math.round(b / 1024 ** 2);

async function main(): Promise<void> {
  const started = performance.now();
  const loadAvgBefore = os.loadavg();
  const results = new Map<SystemName, Round[]>(systems.map((s) => [s, []]));
  // Alternating, so a neighbour's burst on the shared machine lands on all systems alike.
  for (let round = 1; round <= settings.rounds; round++) {
    for (const name of systems) (results.get(name) as Round[]).push(await runOne(name, round));
  }
  if (tty) process.stderr.write('\r\x1b[K');

  const base = new Map([...results].map(([n, rs]) => [n, summarize(rs)]));
  const ceiling = base.get('ceiling')?.entriesPerCpuSecond ?? NaN;
  const summary = new Map<SystemName, Summary>([...base].map(([n, s]) => [n, { ...s, ratioToCeiling: s.entriesPerCpuSecond / ceiling }]));
  const fig = (n: SystemName) => summary.get(n)?.entriesPerCpuSecond ?? NaN;
  const machine = {
    cpu: os.cpus()[0]?.model.trim() ?? 'unknown',
    cores: os.availableParallelism(),
    memoryGiB: Math.round(os.totalmem() / 1024 ** 3),
    node: process.version,
    kernel: `${os.platform()} ${os.release()}`,
    loadAvgBefore: loadAvgBefore.map((l) => +l.toFixed(2)),
    loadAvgAfter: os.loadavg().map((l) => +l.toFixed(2)),
  };
  const line = `bench: e2e ${Math.round(fig('e2e'))} entries/cpu-s, ack ${Math.round(fig('ack'))}, split ${Math.round(fig('split'))}, ceiling ${Math.round(ceiling)}, ratio ${ratio(fig('e2e') / ceiling)}`;
  const totalSeconds = (performance.now() - started) / 1000;
  // Most of a quick run is starting the product; on a busy machine that alone can push it over.
  if (values.quick && totalSeconds > 90) console.error(`bench: --quick took ${totalSeconds.toFixed(0)} s, over its 90 s budget (starting the systems took ${[...results.values()].flat().reduce((a, r) => a + r.startSeconds, 0).toFixed(0)} s)`);

  if (values.json) {
    console.log(
      JSON.stringify({
        machine,
        workload: { ...WORKLOAD, entryBytes: 400, logFsync: 'always' },
        settings: { ...settings, systems },
        totalSeconds: +totalSeconds.toFixed(1),
        systems: Object.fromEntries([...summary].map(([n, s]) => [n, { description: SYSTEM_DESCRIPTIONS[n], ...s }])),
        line,
      }),
    );
    return;
  }

  const rows = [...summary].map(([n, s]) => [
    n,
    int(s.entriesPerSecond),
    int(s.entriesPerCpuSecond),
    ratio(s.ratioToCeiling),
    ms(s.p50Ms),
    ms(s.p99Ms),
    int(s.latencyEntriesPerSecond),
    s.peakRss.map((p) => `${p.name}${p.count > 1 ? ` ×${p.count}` : ''} ${mib(p.peakRssBytes)}`).join(', '),
  ]);
  const head = ['system', 'entries/s', 'entries/cpu-s', 'ratio', 'p50 ms', 'p99 ms', 'at entries/s', 'peak RSS MiB per process'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const fmt = (cells: string[]) => cells.map((c, i) => (i === 0 || i === cells.length - 1 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join('  ').trimEnd();
  console.log(`machine   ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, Node ${machine.node}, ${machine.kernel}; load average ${machine.loadAvgBefore[0]} before, ${machine.loadAvgAfter[0]} after`);
  console.log(`workload  POST ${WORKLOAD.path}, ${WORKLOAD.entriesPerRequest} entries × ~400 B, mixed types, unique ids; ${WORKLOAD.connections} connections; LOG_FSYNC=always`);
  console.log(`run       ${settings.rounds} round(s) × (${settings.warmupSeconds} s warm-up, ${settings.seconds} s max rate, ${settings.latencySeconds} s at half rate), alternating; medians; ${totalSeconds.toFixed(0)} s in all`);
  console.log('');
  console.log(fmt(head));
  for (const r of rows) console.log(fmt(r as string[]));
  console.log('');
  for (const [n, s] of summary) {
    console.log(`${n.padEnd(14)}${SYSTEM_DESCRIPTIONS[n]}`);
    if (s.errors > 0) console.log(`${''.padEnd(14)}!! ${s.errors} non-2xx answers, first: ${s.rounds.find((r) => r.firstError)?.firstError}`);
    const skipped = s.rounds.reduce((a, r) => a + r.latency.skipped, 0);
    if (skipped > 0) console.log(`${''.padEnd(14)}!! ${skipped} requests skipped at half rate: the system fell behind`);
  }
  console.log('entries/s: over the measured window (for systems that load: until the rows are loaded); entries/cpu-s: per CPU-second of all the system\'s processes; ratio: entries/cpu-s ÷ the ceiling\'s; latency per request of 500, open loop at half the max rate');
  console.log(line);
}

main().catch(async (e: unknown) => {
  if (tty) process.stderr.write('\n');
  if (e instanceof RowsMismatch) {
    console.error(`\n!!!!!!!! bench: ROWS LOST OR DUPLICATED !!!!!!!!\n${e.message}\n`);
  } else {
    console.error(e);
  }
  await current?.stop({ keepData: true });
  process.exit(1);
});
