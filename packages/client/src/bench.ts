/**
 * record() throughput and latency with fsync=perBatch, then delivery throughput over real HTTP.
 * `pnpm --filter @ingest/client bench` (BENCH_ENTRIES to change the count).
 *
 * The producer is a hot loop that yields to the event loop every 1,000 records (as any Node
 * producer doing I/O does); the flusher (WAL writes + fdatasync) and the sender share that event
 * loop, so their cost shows in the figures. Each record() call is timed alone.
 */
import { cpus, tmpdir } from 'node:os';
import { mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { gunzip } from 'node:zlib';
import { promisify } from 'node:util';
import Fastify from 'fastify';
import { IngestClient } from './client.ts';
import type { AckResult, Transport } from './transport.ts';

const N = Number(process.env['BENCH_ENTRIES'] ?? 200_000);
const YIELD_EVERY = 1000;

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

function entry(i: number) {
  return { type: 'log' as const, app: 'bench', data: { level: 'info', message: `request ${i} served`, route: '/api/items', status: 200 }, labels: { host: 'bench-1', region: 'eu' } };
}

async function producerRun(client: IngestClient): Promise<{ seconds: number; lat: Float64Array }> {
  const lat = new Float64Array(N);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) {
    const e = entry(i);
    const a = process.hrtime.bigint();
    client.record(e);
    lat[i] = Number(process.hrtime.bigint() - a) / 1000;
    if (i % YIELD_EVERY === YIELD_EVERY - 1) await new Promise((r) => setImmediate(r));
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  lat.sort();
  return { seconds, lat };
}

/** Acknowledges everything at once: isolates the client from any server. */
class AckTransport implements Transport {
  async send(entries: readonly Buffer[]): Promise<AckResult> {
    return { kind: 'ok', accepted: entries.length, rejected: [] };
  }
  async close(): Promise<void> {}
}

async function main(): Promise<void> {
  const cpu = cpus();
  process.stdout.write(`machine: ${cpu.length} × ${cpu[0]?.model ?? 'unknown cpu'}, node ${process.version}, WAL in ${tmpdir()}\n`);
  process.stdout.write(`entries: ${N}, ~${JSON.stringify({ ...entry(123456), id: 'x'.repeat(36), timestamp: Date.now() }).length} bytes each as JSON\n\n`);

  // 1. record() with fsync=perBatch; the sender acks instantly so the WAL never fills.
  {
    const dir = await mkdtemp(path.join(tmpdir(), 'client-bench-'));
    const client = await IngestClient.open({ walDir: dir, transport: new AckTransport(), fsync: 'perBatch' });
    const { seconds, lat } = await producerRun(client);
    const f0 = process.hrtime.bigint();
    await client.flush();
    const flushMs = Number(process.hrtime.bigint() - f0) / 1e6;
    await client.drain(120_000);
    const s = client.stats();
    await client.close();
    await rm(dir, { recursive: true, force: true });
    process.stdout.write(
      [
        'record(), fsync=perBatch (instant-ack transport):',
        `  throughput      ${Math.round(N / seconds).toLocaleString('en-US')} entries/s (loop incl. flusher and sender work on the same thread)`,
        `  latency µs      p50 ${percentile(lat, 50).toFixed(2)}  p99 ${percentile(lat, 99).toFixed(2)}  p99.9 ${percentile(lat, 99.9).toFixed(2)}  max ${(lat[lat.length - 1] ?? 0).toFixed(0)}`,
        `  final flush()   ${flushMs.toFixed(1)} ms;  dropped ${s.droppedTotal}, exported ${s.exportedTotal}`,
        '',
      ].join('\n'),
    );
  }

  // 2. The same producer, delivering over real HTTP (gzip, keep-alive) to a stub edge on loopback.
  {
    const gunzipAsync = promisify(gunzip);
    const edge = Fastify();
    edge.removeAllContentTypeParsers();
    edge.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: 64 * 1024 * 1024 }, (_req, body, done) => done(null, body));
    let received = 0;
    edge.post('/v2/ingest', async (req) => {
      const n = (JSON.parse((await gunzipAsync(req.body as Buffer)).toString()) as unknown[]).length;
      received += n;
      return { accepted: n, rejected: [] };
    });
    const url = await edge.listen({ host: '127.0.0.1', port: 0 });
    const dir = await mkdtemp(path.join(tmpdir(), 'client-bench-'));
    const client = await IngestClient.open({ walDir: dir, endpoint: url, apiKey: 'bench', fsync: 'perBatch', maxBatchSize: 1000 });
    const t0 = process.hrtime.bigint();
    const { seconds, lat } = await producerRun(client);
    await client.drain(300_000);
    const total = Number(process.hrtime.bigint() - t0) / 1e9;
    const s = client.stats();
    await client.close();
    await edge.close();
    await rm(dir, { recursive: true, force: true });
    process.stdout.write(
      [
        'record() + delivery over HTTP to a stub edge (same process, same 2-core budget):',
        `  record()        ${Math.round(N / seconds).toLocaleString('en-US')} entries/s;  p50 ${percentile(lat, 50).toFixed(2)} µs  p99 ${percentile(lat, 99).toFixed(2)} µs`,
        `  delivered       ${received.toLocaleString('en-US')} in ${total.toFixed(2)} s = ${Math.round(received / total).toLocaleString('en-US')} entries/s end to end;  dropped ${s.droppedTotal}`,
        '',
      ].join('\n'),
    );
  }
}

await main();
