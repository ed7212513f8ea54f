/**
 * What one loader INSERT costs the embedded engine, per row, under settings worth comparing:
 * `tsx scripts/bench/chdb-insert.ts [--rounds N]`. CPU of this whole process (chDB's threads
 * included) per row, alternating variants so a busy machine weighs on all of them alike.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { NormalizedEntry } from '@ingest/contracts';
import { TelemetryStore, encodeRow, positionTail, positionedBody } from '@ingest/storage';
import { positiveArg } from './args.ts';

const ROWS = 20_000;
const { values } = parseArgs({ options: { rounds: { type: 'string' } } });
const ROUNDS = positiveArg('chdb-insert', 'rounds', values.rounds, 6, { integer: true });

const dir = await mkdtemp(path.join(tmpdir(), 'chdb-insert-'));
const store = await TelemetryStore.open({ chdbPath: path.join(dir, 'chdb') });
await store.migrate();
let offset = 0;

/** ROWS rows shaped like the bench's workload (mixed types, three labels, a JSON data field). */
function block(): Buffer {
  const rows: Array<{ row: Buffer; tail: string }> = [];
  const now = Date.now();
  for (let i = 0; i < ROWS; i++) {
    const metric = i % 3 === 0;
    const e: NormalizedEntry = {
      id: `id-${offset + i}`, tenant: `tenant-${i % 5}`, type: metric ? 'metric' : 'log', ts: now - i, receivedAt: now, app: `app-${i % 7}`, source: 'bench',
      labels: { host: `h${i % 20}`, region: 'eu-west-1', env: 'prod' }, name: metric ? 'cpu.usage' : '', value: metric ? i / 3 : null, unit: metric ? 'percent' : '',
      level: metric ? '' : 'info', message: metric ? '' : `request served in ${i % 100} ms for user ${i} with some more text`, data: { path: '/api/v1/things', status: 200, bytes: i },
    };
    rows.push({ row: Buffer.from(encodeRow(e)), tail: positionTail(0, offset + i) });
  }
  offset += ROWS;
  return positionedBody(rows);
}

const variants: Array<[string, Record<string, string | number>]> = [
  ['as shipped', {}],
  ['optimize_on_insert=1', { optimize_on_insert: 1 }],
];
const cpu = new Map<string, number[]>();
for (let r = 0; r < ROUNDS; r++) {
  for (const [name, settings] of variants) {
    const body = block();
    const c0 = process.cpuUsage();
    await store.insertEncoded('telemetry', body, `bench:${offset}`, settings);
    const c = process.cpuUsage(c0);
    cpu.set(name, [...(cpu.get(name) ?? []), (c.user + c.system) / ROWS]);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
for (const [name] of variants) console.log(`${name.padEnd(24)} ${median(cpu.get(name) ?? []).toFixed(2)} µs CPU per row (median of ${ROUNDS} inserts of ${ROWS})`);
await store.close();
await rm(dir, { recursive: true, force: true });
