/**
 * `pnpm bench:stages`: CPU per entry of each stage an entry passes through in one process, on the
 * bench's fixed workload, each stage alone and repeated. `pnpm bench` gives the whole product's
 * figure against a ceiling; on a shared machine it moves by ±20% between runs, more than a change
 * to one stage is worth. This says which stage a change moved, and by how much.
 *
 *   npx tsx scripts/bench/stages.ts [--rounds 15] [--requests 32] [--json]
 *
 * Stages, in the order an entry meets them: the edge's UTF-8 decode, depth scan and parse of a
 * request body; the normalizer's validation and row encoding, and the row as a Buffer; the embedded
 * log's record encoding (append) and decoding (read); the loader's insert body. `JSON.parse` of the
 * same bodies is printed beside them as the floor any JSON service pays. CPU is process.cpuUsage()
 * (user + system, so GC threads count) per entry, and each stage as a multiple of JSON.parse in the
 * same round; the stages alternate within each round; medians.
 */
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { decodeUtf8, parseEntries } from '../../services/edge/src/body/read-body.ts';
import { normalizeEntry } from '../../services/normalizer/src/rules/index.ts';
import { encodeBatch } from '../../services/sink-writer/src/loader/clickhouse-loader.ts';
import { decodeBody, encodeRecord, MAX_RECORD_BYTES, prepareMessage, type PreparedMessage } from '../../packages/log/src/embedded/format.ts';
import { positionedBody } from '@ingest/storage';
import type { MessageBatch } from '@ingest/log';
import { positiveArg } from './args.ts';
import { median } from './stats.ts';
import { RequestBodies } from './workload.ts';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string' },
    requests: { type: 'string' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  console.log('pnpm bench:stages [--rounds 15] [--requests 32] [--json]: CPU µs per entry of each pipeline stage on the bench workload');
  process.exit(0);
}
const ROUNDS = positiveArg('bench:stages', 'rounds', values.rounds, 15, { integer: true });
const REQUESTS = positiveArg('bench:stages', 'requests', values.requests, 32, { integer: true });
const JSON_OUT = values.json;

// The edge's defaults; none of them binds on this workload.
const LIMITS = { maxBytes: 8 * 1024 * 1024, maxEntries: 10_000, maxDepth: 32 };
const TENANT = 'bench';
const now = Date.now();
const gen = new RequestBodies('stages');
const bodies = Array.from({ length: REQUESTS }, () => Buffer.from(gen.next()));
const texts = bodies.map((b) => b.toString('utf8'));
const raws = texts.flatMap((t) => parseEntries(t, 'json', LIMITS));
const ctx = { tenant: TENANT, receivedAt: now };
const rowStrings = raws.map((r) => {
  const out = normalizeEntry(r, ctx);
  if (!out.ok) throw new Error(`the workload must be valid: ${out.code} ${out.message}`);
  return out.row;
});
const rows = rowStrings.map((r) => Buffer.from(r));
// The sink writer's headers for one request: tenant, version and a trace context.
const headers = { 'x-ingest-tenant': TENANT, 'x-ingest-version': 'v2', traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' };
const prepared: PreparedMessage[] = rows.map((value) => prepareMessage({ key: TENANT, value, headers }, MAX_RECORD_BYTES, now));
const records = Buffer.alloc(prepared.reduce((s, m) => s + m.size, 0));
{
  let pos = 0;
  prepared.forEach((m, i) => (pos = encodeRecord(records, pos, m, i)));
}
const batch: MessageBatch = { topic: 'telemetry', partition: 0, firstOffset: 1_000_000, lastOffset: 1_000_000 + rows.length - 1, messages: rows.map((value, i) => ({ topic: 'telemetry', partition: 0, offset: 1_000_000 + i, key: TENANT, value, headers, timestamp: now })) };
const N = raws.length;

/** Each stage runs over every entry of the workload once and returns how many it handled. */
const STAGES: Record<string, { what: string; run: () => number }> = {
  'JSON.parse': { what: 'floor: JSON.parse of the request bodies', run: () => texts.reduce((n, t) => n + (JSON.parse(t) as unknown[]).length, 0) },
  'edge parse': { what: 'UTF-8 decode, depth scan, parse (read-body.ts)', run: () => bodies.reduce((n, b) => n + parseEntries(decodeUtf8(b), 'json', LIMITS).length, 0) },
  normalize: { what: 'validate, convert, encode the row (normalizeEntry)', run: () => raws.reduce<number>((n, r) => n + (normalizeEntry(r, ctx).ok ? 1 : 0), 0) },
  'row bytes': { what: 'the row string as a Buffer (normalizer → sink writer)', run: () => rowStrings.reduce((n, r) => n + (Buffer.from(r).length > 0 ? 1 : 0), 0) },
  'log append': { what: 'prepareMessage + encodeRecord (embedded log, CRC included)', run: () => {
    const buf = Buffer.allocUnsafe(records.length);
    let pos = 0;
    for (let i = 0; i < N; i++) pos = encodeRecord(buf, pos, prepareMessage({ key: TENANT, value: rows[i] as Buffer, headers }, MAX_RECORD_BYTES, now), i);
    return N;
  } },
  'log read': { what: 'decodeBody of each record (embedded log; the scan\'s CRC check is not in it)', run: () => {
    let pos = 0;
    for (const m of prepared) {
      decodeBody(records, pos + 8, m.size - 8, 'telemetry', 0);
      pos += m.size;
    }
    return N;
  } },
  'loader body': { what: 'encodeBatch + positionedBody (the INSERT body; chDB\'s own parse is not in it)', run: () => {
    const encoded = encodeBatch(batch, () => undefined);
    return positionedBody(encoded).length > 0 ? encoded.length : 0;
  } },
};

const samples: Record<string, number[]> = {};
// Each stage over JSON.parse in the same round: a shared machine's speed drifts by 2x between
// minutes (other tenants, clock), and a ratio taken within one round cancels most of that.
const ratios: Record<string, number[]> = {};
const names = Object.keys(STAGES);
for (let round = 0; round < ROUNDS; round++) {
  const got: Record<string, number> = {};
  // Rotate the order so no stage always runs right after the same neighbour's garbage.
  for (let k = 0; k < names.length; k++) {
    const name = names[(k + round) % names.length] as string;
    const stage = STAGES[name] as { run: () => number };
    const before = process.cpuUsage();
    const handled = stage.run();
    const used = process.cpuUsage(before);
    if (handled !== N) throw new Error(`${name} handled ${handled} of ${N} entries`);
    got[name] = (used.user + used.system) / N;
    (samples[name] ??= []).push(got[name]);
  }
  for (const name of names) (ratios[name] ??= []).push((got[name] as number) / (got['JSON.parse'] as number));
}

const result = names.map((name) => ({
  stage: name,
  what: (STAGES[name] as { what: string }).what,
  usPerEntry: Number(median(samples[name] as number[]).toFixed(3)),
  timesJsonParse: Number(median(ratios[name] as number[]).toFixed(3)),
}));
const inJs = result.filter((r) => r.stage !== 'JSON.parse').reduce((s, r) => s + r.usPerEntry, 0);
const machine = { cpus: cpus().length, loadavg: loadavg().map((l) => Number(l.toFixed(2))), node: process.version };
if (JSON_OUT) {
  console.log(JSON.stringify({ entries: N, rounds: ROUNDS, machine, stages: result, sumUsPerEntry: Number(inJs.toFixed(3)) }));
} else {
  console.log(`stages: ${N} entries (${REQUESTS} requests of the bench workload), ${ROUNDS} rounds, median; load ${machine.loadavg.join(' ')}, ${machine.cpus} cpus, node ${machine.node}`);
  for (const r of result) console.log(`${r.stage.padEnd(12)} ${r.usPerEntry.toFixed(2).padStart(7)} µs/entry ${r.timesJsonParse.toFixed(2).padStart(6)} × JSON.parse  ${r.what}`);
  const inJsRatio = result.filter((r) => r.stage !== 'JSON.parse').reduce((s, r) => s + r.timesJsonParse, 0);
  console.log(`stages: sum ${inJs.toFixed(2)} µs CPU per entry = ${inJsRatio.toFixed(2)} × JSON.parse (${Math.round(1e6 / inJs)} entries/cpu-s if nothing else ran)`);
}
