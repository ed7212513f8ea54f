/**
 * `pnpm bench`: end-to-end throughput and latency of the embedded deployment, as real processes on
 * this machine. Prints numbers; asserts nothing.
 *
 *   pnpm bench [--seconds 20] [--concurrency 8] [--batch 500] [--json]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { addTenantKey } from '@ingest/tenants';
import { freePort, startStack } from '@ingest/supervisor';
import { batchOf, waitLoaded } from '@ingest/testkit';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '20' },
    concurrency: { type: 'string', default: '8' },
    batch: { type: 'string', default: '500' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  console.log('pnpm bench [--seconds 20] [--concurrency 8] [--batch 500] [--json]');
  process.exit(0);
}
const seconds = Number(values.seconds);
const concurrency = Number(values.concurrency);
const batchSize = Number(values.batch);

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

async function main(): Promise<void> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'ingest-bench-'));
  const { apiKey } = await addTenantKey(path.join(dataDir, 'tenants.json'), 'bench', { entriesPerSecond: 10_000_000, bytesPerSecond: 10 * 1024 ** 3, requestsPerSecond: 100_000 });
  const ports = { edge: await freePort(), normalizer: await freePort(), sink: await freePort() };
  const stack = await startStack({ env: { INGEST_DATA_DIR: dataDir, LOG_LEVEL: 'warn' }, ports, logDir: path.join(dataDir, 'logs') });
  const pool = new Pool(stack.edgeUrl, { connections: concurrency });
  // Payloads are made before the clock starts so the generator's JSON work isn't measured as ours.
  const payloads = Array.from({ length: 64 }, () => JSON.stringify(batchOf(batchSize)));
  const latencies: number[] = [];
  let accepted = 0;
  let errors = 0;
  let sent = 0;
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  let lastPrint = t0;
  const worker = async () => {
    while (performance.now() < deadline) {
      // Unique ids per request: the pre-made payloads are reused, so ids are rewritten cheaply.
      const body = (payloads[sent++ % payloads.length] as string).replace(/"id":"([0-9a-f-]{36})"/g, () => `"id":"${crypto.randomUUID()}"`);
      const s = performance.now();
      const r = await pool.request({ path: '/v2/ingest', method: 'POST', headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' }, body });
      const text = await r.body.text();
      latencies.push(performance.now() - s);
      if (r.statusCode === 200) accepted += (JSON.parse(text) as { accepted: number }).accepted;
      else errors++;
      const now = performance.now();
      if (!values.json && process.stderr.isTTY && now - lastPrint > 1000) {
        lastPrint = now;
        process.stderr.write(`\r${((now - t0) / 1000).toFixed(0)}s  ${Math.round(accepted / ((now - t0) / 1000))} entries/s  `);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsed = (performance.now() - t0) / 1000;
  const tLoad = performance.now();
  await waitLoaded(stack.sink.url, 300_000);
  const drainSeconds = (performance.now() - tLoad) / 1000;
  const stats = (await (await fetch(`${stack.sink.url}/admin/v1/row-stats?tenant=bench`)).json()) as { final: number };
  await pool.close();
  await stack.stop();
  await rm(dataDir, { recursive: true, force: true });

  latencies.sort((a, b) => a - b);
  const result = {
    machine: { cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, memoryGiB: Math.round(os.totalmem() / 1024 ** 3), node: process.version, platform: `${os.platform()} ${os.release()}` },
    settings: { seconds, concurrency, batchSize, mode: 'embedded log (fsync always) + chDB' },
    acceptedEntries: accepted,
    requests: latencies.length,
    errors,
    entriesPerSecond: Math.round(accepted / elapsed),
    requestLatencyMs: { p50: +pct(latencies, 50).toFixed(1), p95: +pct(latencies, 95).toFixed(1), p99: +pct(latencies, 99).toFixed(1) },
    loaderDrainSeconds: +drainSeconds.toFixed(2),
    rowsInClickHouse: stats.final,
    endToEndEntriesPerSecond: Math.round(accepted / (elapsed + drainSeconds)),
  };
  if (values.json) {
    console.log(JSON.stringify(result));
    return;
  }
  if (process.stderr.isTTY) process.stderr.write('\n');
  console.log(`machine      ${result.machine.cpu}, ${result.machine.cores} cores, ${result.machine.memoryGiB} GiB, Node ${result.machine.node}
settings     ${seconds}s, ${concurrency} concurrent producers, ${batchSize} entries/request, ${result.settings.mode}
accepted     ${accepted} entries in ${latencies.length} requests (${errors} non-2xx)
throughput   ${result.entriesPerSecond} entries/s acknowledged (durable in the log)
latency      p50 ${result.requestLatencyMs.p50} ms   p95 ${result.requestLatencyMs.p95} ms   p99 ${result.requestLatencyMs.p99} ms  (per request of ${batchSize})
loader       ${drainSeconds.toFixed(2)} s to drain after load stopped; ${stats.final} rows in ClickHouse
end to end   ${result.endToEndEntriesPerSecond} entries/s from first POST to queryable`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
