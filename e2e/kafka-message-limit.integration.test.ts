import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logEntry, postIngest, startInProcessStack, startKafka, type InProcessStack, type KafkaHandle } from '@ingest/testkit';
import { LogRecordTooLargeError, openLog, type DurableLog } from '@ingest/log';
import { tenantId } from './helpers.ts';

const LIMIT = 256 * 1024;
// A broker of its own (its limit is part of what is tested): KAFKA_PORT + 100, i.e. 39192 beside 39092.
const PORT = Number(process.env['KAFKA_SMALL_LIMIT_PORT'] ?? Number(process.env['KAFKA_PORT'] ?? 19092) + 100);
const TOTAL_BYTES = 20 * 1024 * 1024;
const PER_REQUEST = 2_000;
const CONCURRENCY = 3;

describe('Kafka with message.max.bytes = 256 KiB: 20 MiB of one tenant through the real pipeline', () => {
  let kafka: KafkaHandle;
  let stack: InProcessStack;
  let log: DurableLog | undefined;
  const run = randomBytes(4).toString('hex');
  const topic = `telemetry.v2.limit.${run}`;

  beforeAll(async () => {
    kafka = await startKafka({ port: PORT, extraConfig: [`message.max.bytes=${LIMIT}`], heapOpts: '-Xms96m -Xmx320m' });
    stack = await startInProcessStack({
      env: {
        KAFKA_BROKERS: kafka.brokers.join(','),
        KAFKA_REPLICATION_FACTOR: '1',
        KAFKA_MIN_INSYNC_REPLICAS: '1',
        LOG_TOPIC: topic,
        LOG_DLQ_TOPIC: `${topic}.dlq`,
        LOADER_GROUP: `loader-${run}`,
        // Batches of 4 MiB (the default) against a 256 KiB broker: every append must be cut.
        SINK_BATCH_MAX_BYTES: '4MiB',
      },
    });
  });

  afterAll(async () => {
    await log?.close();
    await stack?.close();
    await kafka?.stop();
  });

  it('lands every entry in ClickHouse exactly once, with no 503', async () => {
    // The broker really has the small limit (a reused broker without it would prove nothing): the
    // log reads it from the broker and refuses a record over it without sending anything.
    log = openLog({ kafkaBrokers: kafka.brokers, dir: '', partitions: 3, fsync: 'never', clientId: `limit-read-${run}` });
    const probe = log.producer();
    const refused = await probe.send(topic, [{ key: 'probe', value: randomBytes(LIMIT) }]).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(refused).toBeInstanceOf(LogRecordTooLargeError);
    expect((refused as LogRecordTooLargeError).limitBytes).toBe(LIMIT);

    const tenant = tenantId('big');
    const key = await stack.tenant(tenant, { entriesPerSecond: 1_000_000, bytesPerSecond: 1024 ** 3, requestsPerSecond: 10_000 });
    // ~650-byte entries with random text, so gzip cannot shrink batches under the broker limit.
    const entry = (i: number): Record<string, unknown> =>
      logEntry(i, { data: { level: 'info', message: `entry ${i} ${randomBytes(384).toString('base64')}` } });
    const requests: Array<Array<Record<string, unknown>>> = [];
    let bytes = 0;
    let total = 0;
    while (bytes < TOTAL_BYTES) {
      const batch = Array.from({ length: PER_REQUEST }, (_, j) => entry(total + j));
      bytes += Buffer.byteLength(JSON.stringify(batch));
      total += batch.length;
      requests.push(batch);
    }

    const started = Date.now();
    const statuses: number[] = [];
    let accepted = 0;
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < requests.length) {
        const batch = requests[next++] ?? [];
        const res = await postIngest(stack.edgeUrl, key, batch);
        statuses.push(res.status);
        if (res.status !== 200) throw new Error(`ingest answered ${res.status}: ${JSON.stringify(res.body).slice(0, 300)}`);
        accepted += res.body.accepted ?? 0;
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    const ingestedMs = Date.now() - started;
    await stack.waitLoaded(240_000);
    const loadedMs = Date.now() - started;

    expect(statuses.every((s) => s === 200)).toBe(true);
    expect(accepted).toBe(total);
    // Exactly once in the log as well: a split never appended anything twice.
    const parts = await log.admin().partitions(topic);
    expect(parts.reduce((n, p) => n + p.high - p.low, 0)).toBe(total);
    const stats = await stack.rowStats(tenant);
    expect(stats.final).toBe(total);
    expect(stats.rows).toBe(total);
    process.stderr.write(
      `kafka-message-limit: ${total} entries, ${(bytes / 1048576).toFixed(1)} MiB in ${requests.length} requests; all 200 after ${ingestedMs} ms, loaded after ${loadedMs} ms\n`,
    );
  });
});
