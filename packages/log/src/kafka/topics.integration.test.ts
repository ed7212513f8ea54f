import { randomBytes } from 'node:crypto';
import { ConfigResourceTypes, Kafka, logLevel, type Admin } from 'kafkajs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startKafka, type KafkaHandle } from '@ingest/testkit';
import { LogRecordTooLargeError, type DurableLog, type LogMessage } from '../types.ts';
import { createKafkaLog } from './kafka-log.ts';
import type { KafkaLogOptions } from './options.ts';

const run = randomBytes(4).toString('hex');
let seq = 0;
const topicName = (what: string): string => `topics-it.${run}.${what}.${seq++}`;

/** Random bytes: gzip cannot shrink them, so sizes on the wire are what the test says. */
function records(count: number, bytes: number, key = 'acme'): LogMessage[] {
  return Array.from({ length: count }, () => ({ key, value: randomBytes(bytes), headers: { 'x-ingest-tenant': key } }));
}

describe('kafka topics and produce limits (real broker)', () => {
  let kafka: KafkaHandle;
  let raw: Admin;
  const logs: DurableLog[] = [];
  let records_: Array<Record<string, unknown>> = [];

  const openLog = (o: Partial<KafkaLogOptions> = {}): DurableLog => {
    const log = createKafkaLog({
      brokers: kafka.brokers,
      clientId: `topics-it-${run}`,
      replicationFactor: 1,
      minInsyncReplicas: 1,
      log: (r) => {
        if (records_.length < 5_000) records_.push(r);
      },
      ...o,
    });
    logs.push(log);
    return log;
  };

  const topicConfigs = async (topic: string): Promise<Record<string, string>> => {
    const res = await raw.describeConfigs({ includeSynonyms: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: topic }] });
    return Object.fromEntries(res.resources.flatMap((r) => r.configEntries.map((c) => [c.configName, c.configValue])));
  };

  const high = async (log: DurableLog, topic: string): Promise<number> =>
    (await log.admin().partitions(topic)).reduce((n, p) => n + p.high, 0);

  const warnings = (msg: string): Array<Record<string, unknown>> => records_.filter((r) => r['level'] === 'warn' && r['msg'] === msg);

  beforeEach((ctx) => {
    records_ = [];
    ctx.onTestFailed(() => {
      for (const r of records_) process.stderr.write(`${JSON.stringify(r)}\n`);
    });
  });

  beforeAll(async () => {
    kafka = await startKafka();
    raw = new Kafka({ brokers: kafka.brokers, clientId: `topics-it-raw-${run}`, logLevel: logLevel.NOTHING }).admin();
    await raw.connect();
  });

  afterAll(async () => {
    for (const log of logs) await log.close();
    await raw?.disconnect();
    await kafka?.stop();
  });

  it('creates a topic with the configured partitions, replication factor, min.insync.replicas and retention', async () => {
    const topic = topicName('create');
    const log = openLog({ replicationFactor: 1, minInsyncReplicas: 1, retentionMs: 3_600_000 });
    await log.admin().ensureTopic(topic, 2);

    const configs = await topicConfigs(topic);
    expect(configs['min.insync.replicas']).toBe('1');
    expect(configs['retention.ms']).toBe('3600000');
    const { topics } = await raw.fetchTopicMetadata({ topics: [topic] });
    expect(topics[0]?.partitions).toHaveLength(2);
    expect(topics[0]?.partitions.every((p) => p.replicas.length === 1)).toBe(true);
    // A topic created as configured gives no warning, and a second ensureTopic changes nothing.
    await log.admin().ensureTopic(topic, 2);
    expect(warnings('topic setting differs from the configuration')).toEqual([]);
  });

  it('warns about every setting of an existing topic that differs, naming topic, key, expected and actual', async () => {
    const topic = topicName('mismatch');
    await raw.createTopics({
      waitForLeaders: true,
      topics: [{ topic, numPartitions: 1, replicationFactor: 1, configEntries: [{ name: 'retention.ms', value: '7200000' }] }],
    });
    const log = openLog({ replicationFactor: 3, minInsyncReplicas: 2, retentionMs: 3_600_000 });
    await log.admin().ensureTopic(topic, 3);

    const got = warnings('topic setting differs from the configuration').map(({ topic: t, key, expected, actual }) => ({ topic: t, key, expected, actual }));
    expect(got).toEqual(
      expect.arrayContaining([
        { topic, key: 'partitions', expected: '>= 3', actual: '1' },
        { topic, key: 'replication.factor', expected: '3', actual: '1' },
        { topic, key: 'min.insync.replicas', expected: '2', actual: '1' },
        { topic, key: 'retention.ms', expected: '3600000', actual: '7200000' },
      ]),
    );
    expect(got).toHaveLength(4);
    // The existing topic is left as it is: a warning, never a change behind the operator's back.
    expect((await topicConfigs(topic))['retention.ms']).toBe('7200000');
  });

  it('cuts a send larger than the topic limit into produce requests that fit (gzip on)', async () => {
    const topic = topicName('split');
    await raw.createTopics({
      waitForLeaders: true,
      topics: [{ topic, numPartitions: 1, replicationFactor: 1, configEntries: [{ name: 'max.message.bytes', value: '16384' }] }],
    });
    const log = openLog({ compression: 'gzip' });
    await log.admin().ensureTopic(topic, 1);
    const producer = log.producer();

    const ranges = await producer.send(topic, records(100, 1_000));
    expect(ranges).toEqual([{ partition: 0, firstOffset: 0, lastOffset: 99 }]);
    expect(await high(log, topic)).toBe(100);
    // Sized before sending: the broker never had to refuse anything.
    expect(warnings('produce request over the broker size limit; splitting')).toEqual([]);
    const read = await log.admin().read(topic, 0, 0, 1_000);
    expect(read).toHaveLength(100);
  });

  it('refuses a record too large on its own for good, writing nothing of that send', async () => {
    const topic = topicName('record');
    await raw.createTopics({
      waitForLeaders: true,
      topics: [{ topic, numPartitions: 1, replicationFactor: 1, configEntries: [{ name: 'max.message.bytes', value: '16384' }] }],
    });
    // No ensureTopic here: the producer looks the limit up itself.
    const log = openLog();
    const producer = log.producer();
    const batch = [...records(3, 100), ...records(1, 20_000), ...records(3, 100)];

    const err = await producer.send(topic, batch).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(LogRecordTooLargeError);
    expect((err as LogRecordTooLargeError).indices).toEqual([3]);
    expect((err as LogRecordTooLargeError).limitBytes).toBe(16_384);
    expect(await high(log, topic)).toBe(0);
    // The producer is still usable for records that fit.
    await producer.send(topic, records(2, 100));
    expect(await high(log, topic)).toBe(2);
  });

  it('splits by halving when the broker answers MESSAGE_TOO_LARGE (limit lowered after start)', async () => {
    const topic = topicName('lowered');
    const log = openLog({ compression: 'none' });
    await log.admin().ensureTopic(topic, 1);
    const producer = log.producer();
    await producer.send(topic, records(1, 100));
    // The producer read 1 MiB at start; an operator lowers the limit while it runs.
    await raw.alterConfigs({
      validateOnly: false,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configEntries: [{ name: 'max.message.bytes', value: '8192' }] }],
    });
    await expect.poll(async () => (await topicConfigs(topic))['max.message.bytes'], { timeout: 30_000 }).toBe('8192');

    const ranges = await producer.send(topic, records(64, 1_000));
    expect(ranges.reduce((n, r) => n + r.lastOffset - r.firstOffset + 1, 0)).toBe(64);
    expect(await high(log, topic)).toBe(65);
    const splits = warnings('produce request over the broker size limit; splitting');
    expect(splits.length).toBeGreaterThan(0);
    expect(splits.length).toBeLessThanOrEqual(16);

    // The next send reads the new limit and refuses an oversized record before sending anything.
    await expect(producer.send(topic, records(1, 10_000))).rejects.toBeInstanceOf(LogRecordTooLargeError);
    expect(await high(log, topic)).toBe(65);
  });
});
