/**
 * A producer process for the kill -9 test: records FLUSHED entries (ids f-0…), calls flush(),
 * prints "FLUSHED <n>", then keeps recording unflushed entries (ids u-…) until it is killed.
 * Configured by environment: WAL_DIR, ENDPOINT, API_KEY, FLUSHED.
 */
import { IngestClient } from '@ingest/client';

const env = (k: string): string => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is required`);
  return v;
};

const n = Number(env('FLUSHED'));
const client = await IngestClient.open({ walDir: env('WAL_DIR'), endpoint: env('ENDPOINT'), apiKey: env('API_KEY'), maxBatchSize: 500, maxInFlight: 2, fsync: 'perBatch' });
const half = Math.floor(n / 2);
for (let i = 0; i < half; i++) client.record({ id: `f-${i}`, type: 'log', app: 'crash', data: { level: 'info', message: `flushed ${i}` } });
// The test's point is a kill with some flushed entries acked and some not: wait (bounded) until the
// first batch is acked rather than hope a pause was long enough on a busy machine.
const deadline = Date.now() + 120_000;
while (client.stats().exportedTotal === 0) {
  if (Date.now() > deadline) throw new Error('nothing was exported within 120 s');
  await new Promise((r) => setTimeout(r, 20));
}
for (let i = half; i < n; i++) client.record({ id: `f-${i}`, type: 'log', app: 'crash', data: { level: 'info', message: `flushed ${i}` } });
await client.flush();
process.stdout.write(`FLUSHED ${n} exported=${client.stats().exportedTotal}\n`);
let j = 0;
// A ref'd timer: the process lives, recording, until the test kills it.
setInterval(() => {
  for (let k = 0; k < 100; k++) client.record({ id: `u-${j++}`, type: 'log', app: 'crash', data: { level: 'info', message: 'unflushed' } });
}, 5);
