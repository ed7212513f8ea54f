/**
 * Append throughput of the embedded log with fsync 'always': 500-message sends of ~300-byte values
 * keyed over 50 tenants (so each send touches all 3 partitions), at a few concurrency levels.
 *
 *   npx tsx packages/log/src/embedded/bench.ts [seconds per level, default 5]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LogMessage } from '../types.ts';
import { createEmbeddedLog } from './log.ts';

const BATCH = 500;
const VALUE_BYTES = 300;
const TENANTS = 50;

function batch(seq: number): LogMessage[] {
  const now = Date.now();
  return Array.from({ length: BATCH }, (_, i) => ({
    key: `tenant-${(seq * BATCH + i) % TENANTS}`,
    value: Buffer.from(`{"id":"${seq}-${i}","type":"log","data":"`.padEnd(VALUE_BYTES - 2, 'x') + '"}'),
    headers: { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', 'x-ingest-tenant': `tenant-${i % TENANTS}` },
    timestamp: now,
  }));
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

async function level(concurrency: number, seconds: number): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'embedded-log-bench-'));
  const log = createEmbeddedLog({ dir, fsync: 'always', partitions: 3 });
  try {
    const producer = log.producer();
    await producer.send('bench', batch(0)); // creates the topic; not measured
    const latencies: number[] = [];
    let sent = 0;
    let seq = 1;
    const start = performance.now();
    const deadline = start + seconds * 1000;
    const worker = async (): Promise<void> => {
      while (performance.now() < deadline) {
        const messages = batch(seq++);
        const t0 = performance.now();
        await producer.send('bench', messages);
        latencies.push(performance.now() - t0);
        sent += messages.length;
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    const elapsed = (performance.now() - start) / 1000;
    latencies.sort((a, b) => a - b);
    const rate = sent / elapsed;
    console.log(
      [
        `concurrency ${String(concurrency).padStart(2)}`,
        `${Math.round(rate).toLocaleString('en-US').padStart(9)} msg/s`,
        `${((rate * VALUE_BYTES) / 1024 / 1024).toFixed(1).padStart(5)} MiB/s values`,
        `append p50 ${quantile(latencies, 0.5).toFixed(2)} ms`,
        `p95 ${quantile(latencies, 0.95).toFixed(2)} ms`,
        `p99 ${quantile(latencies, 0.99).toFixed(2)} ms`,
        `(${latencies.length} sends)`,
      ].join('  '),
    );
  } finally {
    await log.close();
    await rm(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const seconds = Number(process.argv[2] ?? 5);
  console.log(`embedded log, fsync=always, ${BATCH}-message sends, ${VALUE_BYTES}-byte values, 3 partitions, ${seconds}s per level`);
  for (const c of [1, 4, 16]) await level(c, seconds);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
