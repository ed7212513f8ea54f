/**
 * `pnpm bench:soak`: the embedded default (ack + load, fsync always) under a steady open-loop rate
 * for a while, sampling each process's resident memory, to show whether it grows once warm.
 *
 *   pnpm bench:soak [--minutes 10] [--warmup-minutes 1] [--rate 4000] [--json]
 *
 * Last line: `soak: <min> min at <rate> entries/s, rss after warm-up <MiB>, at end <MiB>, max <MiB>, growth <MiB>`
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { waitLoaded } from '@ingest/testkit';
import { openLoop } from './load.ts';
import { positiveArg } from './args.ts';
import { descendants, parseStatusKb, readProcTable } from './proc.ts';
import { startSystem } from './systems.ts';
import { RequestBodies, WORKLOAD } from './workload.ts';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string' },
    'warmup-minutes': { type: 'string' },
    rate: { type: 'string' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  console.log('pnpm bench:soak [--minutes 10] [--warmup-minutes 1] [--rate <entries/s> 4000] [--json]: resident memory of the embedded default under a steady rate');
  process.exit(0);
}
const minutes = positiveArg('bench:soak', 'minutes', values.minutes, 10);
const warmupMinutes = positiveArg('bench:soak', 'warmup-minutes', values['warmup-minutes'], 1);
const rate = positiveArg('bench:soak', 'rate', values.rate, 4000);
if (warmupMinutes >= minutes) throw new Error('--warmup-minutes must be less than --minutes');

/** Resident memory of the whole tree (every process the product runs), in bytes. */
function treeRss(rootPid: number): number {
  let total = 0;
  for (const pid of descendants(readProcTable(), rootPid)) {
    try {
      total += parseStatusKb(readFileSync(path.join('/proc', String(pid), 'status'), 'utf8'), 'VmRSS') ?? 0;
    } catch {
      // exited meanwhile
    }
  }
  return total;
}

const mib = (b: number) => Math.round(b / 1024 / 1024);
const sys = await startSystem('e2e');
const pool = new Pool(sys.url, { connections: WORKLOAD.connections });
const samples: Array<{ s: number; rss: number }> = [];
try {
  const t0 = performance.now();
  let lastSample = -Infinity;
  const result = await openLoop(
    { pool, bodies: new RequestBodies(`soak${Date.now().toString(36)}`), headers: sys.headers },
    {
      seconds: minutes * 60,
      requestsPerSecond: rate / WORKLOAD.entriesPerRequest,
      maxWaiting: 64,
      onTick: () => {
        const s = (performance.now() - t0) / 1000;
        if (s - lastSample < 10) return;
        lastSample = s;
        const rss = treeRss(sys.pid);
        samples.push({ s, rss });
        if (!values.json) process.stderr.write(`soak: ${s.toFixed(0)} s, rss ${mib(rss)} MiB\n`);
      },
    },
  );
  if (sys.sink) await waitLoaded(sys.sink.url, 120_000, sys.sink.headers);
  const warm = samples.filter((x) => x.s >= warmupMinutes * 60);
  const first = warm[0]?.rss ?? NaN;
  const last = warm[warm.length - 1]?.rss ?? NaN;
  const max = Math.max(...warm.map((x) => x.rss));
  const summary = { minutes, rate, requests: result.requests, errors: result.errors, skipped: result.skipped, rssAfterWarmupMiB: mib(first), rssAtEndMiB: mib(last), rssMaxMiB: mib(max), growthMiB: mib(last - first), samples: samples.map((x) => ({ s: Math.round(x.s), rssMiB: mib(x.rss) })) };
  if (values.json) console.log(JSON.stringify(summary));
  console.log(`soak: ${minutes} min at ${rate} entries/s, rss after warm-up ${summary.rssAfterWarmupMiB} MiB, at end ${summary.rssAtEndMiB} MiB, max ${summary.rssMaxMiB} MiB, growth ${summary.growthMiB} MiB (${result.errors} errors, ${result.skipped} skipped)`);
} finally {
  await pool.close();
  await sys.stop();
}
