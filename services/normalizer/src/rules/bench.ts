/**
 * Throughput of normalizeEntry on a mix of entry types: `npx tsx services/normalizer/src/rules/bench.ts`.
 * Not a test: numbers depend on the machine; this is for spotting regressions by eye.
 */
import { normalizeEntry } from './normalize.ts';

const now = Date.now();
const ctx = { tenant: 'bench', receivedAt: now };

function mix(i: number): unknown {
  switch (i % 5) {
    case 0:
      return { type: 'log', timestamp: now - i, app: 'api', data: { message: `request ${i} served`, level: 'info' }, labels: { env: 'prod' } };
    case 1:
      return { type: 'metric', timestamp: new Date(now - i).toISOString(), data: { name: 'http.server.duration', value: i % 1000, unit: 'ms' } };
    case 2:
      return { type: 'event', timestamp: now - i, data: { name: 'deploy', attributes: { version: '1.2.3', region: 'eu' } } };
    case 3:
      return { type: 'health', timestamp: now - i, app: 'api', data: { status: 'healthy', check: 'db', latencyMs: 3 } };
    default:
      return { id: `a-${i}`, type: 'alert', timestamp: now - i, data: { name: 'DiskFull', severity: 'crit', summary: 'disk 95%' } };
  }
}

function run(label: string, inputs: unknown[], rounds: number): void {
  let accepted = 0;
  const started = process.hrtime.bigint();
  for (let r = 0; r < rounds; r++) for (const input of inputs) if (normalizeEntry(input, ctx).ok) accepted++;
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const total = inputs.length * rounds;
  if (accepted !== total) throw new Error(`${label}: only ${accepted} of ${total} accepted`);
  console.log(`${label.padEnd(34)} ${Math.round(total / seconds).toLocaleString('en')} entries/s`);
}

const mixed = Array.from({ length: 10_000 }, (_, i) => mix(i));
const logs = Array.from({ length: 10_000 }, (_, i) => mix(i * 5));
const logsWithIds = logs.map((e, i) => ({ ...(e as object), id: `p-${i}` }));

run('warm-up', mixed, 5);
run('mixed types (id-less except alerts)', mixed, 20);
run('simple logs, id assigned (sha256)', logs, 20);
run('simple logs, producer id', logsWithIds, 20);
