/**
 * Does moving the edge's parse and the normalizer's validation to a worker pool pay (issue 10)?
 * `npx tsx scripts/bench/worker-pool.ts [--rounds 5] [--requests 100] [--inflight 8]`
 *
 * Per request of the bench's workload (500 entries, ~200 KB), the same work inline on the main
 * thread, and in a piscina pool of 1 or 2 workers returning either the row strings (structured
 * clone) or every row packed into one transferred buffer; two controls run a whole run's bodies in
 * one task (no per-request messages), the worker's code loaded two ways. Every variant ends where the
 * normalizer hands over to the sink writer: one Buffer per accepted row on the main thread.
 * CPU is process.cpuUsage() (every thread, GC included) per entry; the main thread's share is its
 * event-loop active time. Variants alternate within each round, in a rotating order; medians.
 */
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { build } from 'esbuild';
import { Piscina } from 'piscina';
import { decodeUtf8, parseEntries } from '../../services/edge/src/body/read-body.ts';
import { normalizeEntry } from '../../services/normalizer/src/rules/index.ts';
import { positiveArg } from './args.ts';
import { median } from './stats.ts';
import { RequestBodies, WORKLOAD } from './workload.ts';
import type { ParseResult, ParseTask } from './worker-pool-task.ts';

const { values } = parseArgs({ options: { rounds: { type: 'string' }, requests: { type: 'string' }, inflight: { type: 'string' } } });
const ROUNDS = positiveArg('worker-pool', 'rounds', values.rounds, 5, { integer: true });
const REQUESTS = positiveArg('worker-pool', 'requests', values.requests, 100, { integer: true });
const INFLIGHT = positiveArg('worker-pool', 'inflight', values.inflight, WORKLOAD.connections, { integer: true });

// The edge's defaults; none of them binds on this workload.
const LIMITS = { maxBytes: 8 * 1024 * 1024, maxEntries: 10_000, maxDepth: 32 };
const TENANT = 'bench';
const bodies = new RequestBodies('wp');

/** Fresh bodies for one run, each in its own ArrayBuffer (as Buffer.concat makes them), so they can be transferred. */
function freshBodies(n: number): Buffer[] {
  return Array.from({ length: n }, () => Buffer.from(bodies.next()));
}

interface Run {
  entries: number;
  cpuUs: number;
  wallMs: number;
  mainActiveMs: number;
}

async function measure(n: number, work: (bodies: Buffer[]) => Promise<number>): Promise<Run> {
  const input = freshBodies(n);
  const elu0 = performance.eventLoopUtilization();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const entries = await work(input);
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const elu = performance.eventLoopUtilization(elu0);
  if (entries !== n * bodies.entriesPerRequest) throw new Error(`accepted ${entries} of ${n * bodies.entriesPerRequest}`);
  return { entries, cpuUs: cpu.user + cpu.system, wallMs, mainActiveMs: elu.active };
}

/** What the product does today on the main thread, per request. */
function inlineOne(body: Buffer): Buffer[] {
  const seen = { bigNumber: false };
  const entries = parseEntries(decodeUtf8(body), 'json', LIMITS, seen);
  const ctx = { tenant: TENANT, receivedAt: Date.now() };
  const rows: Buffer[] = [];
  for (const raw of entries) {
    const out = normalizeEntry(raw, ctx);
    if (out.ok) rows.push(Buffer.from(out.row));
  }
  return rows;
}

async function inline(input: Buffer[]): Promise<number> {
  let accepted = 0;
  for (const body of input) {
    accepted += inlineOne(body).length;
    // One request per turn of the loop, as requests arrive; also lets the loop's timing see it.
    await yieldToLoop();
  }
  return accepted;
}

/** The main thread's side of a pooled request: Buffers of the rows, as the normalizer hands them on. */
function rowsOf(r: ParseResult): Buffer[] {
  if (r.kind === 'strings') return r.rows.map((row) => Buffer.from(row));
  const out: Buffer[] = new Array<Buffer>(r.lengths.length);
  const all = Buffer.from(r.bytes.buffer, r.bytes.byteOffset, r.bytes.byteLength);
  let at = 0;
  for (let i = 0; i < r.lengths.length; i++) {
    const len = r.lengths[i] as number;
    out[i] = all.subarray(at, at + len);
    at += len;
  }
  return out;
}

function pooled(pool: Piscina<ParseTask, ParseResult>, result: ParseTask['result']) {
  return async (input: Buffer[]): Promise<number> => {
    let next = 0;
    let accepted = 0;
    // INFLIGHT requests at a time, like the bench's connections.
    const lane = async () => {
      while (next < input.length) {
        const body = input[next++] as Buffer;
        const task: ParseTask = { body, tenant: TENANT, receivedAt: Date.now(), ...LIMITS, result };
        const r = await pool.run(task, { transferList: [body.buffer as ArrayBuffer] });
        accepted += rowsOf(r).length;
      }
    };
    await Promise.all(Array.from({ length: INFLIGHT }, lane));
    return accepted;
  };
}

/** The control: all of the run's bodies in one task, looped over inside one worker. */
function wholeRunInWorker(pool: Piscina<ParseTask, ParseResult>) {
  return async (input: Buffer[]): Promise<number> => {
    const task = { bodies: input, tenant: TENANT, receivedAt: Date.now(), ...LIMITS };
    const accepted: unknown = await pool.run(task as unknown as ParseTask, { name: 'runAll', transferList: input.map((b) => b.buffer as ArrayBuffer) });
    return accepted as number;
  };
}

const taskTs = new URL('./worker-pool-task.ts', import.meta.url);
// Under tsx a worker does not get tsx's ESM hooks (Node 20): piscina's worker require()s the task,
// so tsx compiles it and everything it imports to CommonJS, unlike the main thread's code. Bundled
// as one ES module it runs as the main thread's does; the tsx-loaded way is kept as a control.
const bundled = new URL('../../node_modules/.cache/worker-pool-bench/task.mjs', import.meta.url);
await build({ entryPoints: [taskTs.pathname], outfile: bundled.pathname, bundle: true, format: 'esm', platform: 'node', target: 'node20', external: ['piscina'], logLevel: 'warning' });
const poolOf = (threads: number, filename: URL) => new Piscina<ParseTask, ParseResult>({ filename: filename.href, minThreads: threads, maxThreads: threads, idleTimeout: 3_600_000 });
const pool1 = poolOf(1, bundled);
const pool2 = poolOf(2, bundled);
const pool1Tsx = poolOf(1, taskTs);

const variants: Array<[string, (input: Buffer[]) => Promise<number>]> = [
  ['inline (main thread)', inline],
  ['pool 1 worker, strings cloned', pooled(pool1, 'strings')],
  ['pool 2 workers, strings cloned', pooled(pool2, 'strings')],
  ['pool 1 worker, rows packed + transferred', pooled(pool1, 'packed')],
  ['pool 2 workers, rows packed + transferred', pooled(pool2, 'packed')],
  ['control: whole run in 1 worker, no messages', wholeRunInWorker(pool1)],
  ['control: the same, worker code loaded by tsx (CommonJS)', wholeRunInWorker(pool1Tsx)],
];

/** The return trip alone: structured clone of one request's row strings, and Buffers made of them. */
function returnCost(): { cloneUsPerRequest: number; bufferUsPerRequest: number; rowBytes: number } {
  const rows: string[] = [];
  const entries = parseEntries(decodeUtf8(Buffer.from(bodies.next())), 'json', LIMITS);
  for (const raw of entries) {
    const out = normalizeEntry(raw, { tenant: TENANT, receivedAt: Date.now() });
    if (out.ok) rows.push(out.row);
  }
  const rowBytes = rows.reduce((n, r) => n + Buffer.byteLength(r), 0);
  const time = (reps: number, f: () => void) => {
    const c0 = process.cpuUsage();
    for (let i = 0; i < reps; i++) f();
    const c = process.cpuUsage(c0);
    return (c.user + c.system) / reps;
  };
  const clone = () => void structuredClone(rows);
  const buffers = () => void rows.map((r) => Buffer.from(r));
  time(50, clone);
  time(50, buffers);
  const cloneUs: number[] = [];
  const bufferUs: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    cloneUs.push(time(200, clone));
    bufferUs.push(time(200, buffers));
  }
  return { cloneUsPerRequest: median(cloneUs), bufferUsPerRequest: median(bufferUs), rowBytes };
}

const load0 = loadavg();
console.log(`worker-pool: ${cpus().length} CPUs, Node ${process.version}, load ${load0.map((l) => l.toFixed(2)).join(' ')}; ${ROUNDS} rounds × ${REQUESTS} requests of ${bodies.entriesPerRequest} entries (~${Math.round(bodies.bodyBytes / 1024)} KB), ${INFLIGHT} in flight`);
for (const [, work] of variants) await measure(20, work);

const runs = new Map<string, Run[]>(variants.map(([name]) => [name, []]));
for (let round = 0; round < ROUNDS; round++) {
  for (let k = 0; k < variants.length; k++) {
    const [name, work] = variants[(round + k) % variants.length] as (typeof variants)[number];
    runs.get(name)?.push(await measure(REQUESTS, work));
  }
}

const perEntry = (rs: Run[], f: (r: Run) => number) => median(rs.map((r) => f(r) / r.entries));
const base = perEntry(runs.get(variants[0]?.[0] ?? '') ?? [], (r) => r.cpuUs);
console.log('\n| variant | µs CPU per entry (all threads) | vs inline | entries/s | main thread busy, µs per entry (wall) |');
console.log('|---|---|---|---|---|');
for (const [name, rs] of runs) {
  const cpu = perEntry(rs, (r) => r.cpuUs);
  const rate = median(rs.map((r) => r.entries / (r.wallMs / 1000)));
  const main = perEntry(rs, (r) => r.mainActiveMs * 1000);
  console.log(`| ${name} | ${cpu.toFixed(2)} | ${cpu >= base ? '+' : ''}${(((cpu - base) / base) * 100).toFixed(0)}% | ${Math.round(rate).toLocaleString('en')} | ${main.toFixed(2)} |`);
}

const rc = returnCost();
console.log(`\nreturn trip per request (${Math.round(rc.rowBytes / 1024)} KB of rows): structured clone of the row strings ${Math.round(rc.cloneUsPerRequest)} µs CPU (${(rc.cloneUsPerRequest / bodies.entriesPerRequest).toFixed(2)} µs per entry), Buffer per row ${Math.round(rc.bufferUsPerRequest)} µs`);
console.log(`load ${load0.map((l) => l.toFixed(2)).join(' ')} at start, ${loadavg().map((l) => l.toFixed(2)).join(' ')} at end`);
await Promise.all([pool1.destroy(), pool2.destroy(), pool1Tsx.destroy()]);
