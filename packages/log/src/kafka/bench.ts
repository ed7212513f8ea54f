/**
 * Produce cost of two Kafka clients on one workload (issue 10): kafkajs, which the Kafka log uses,
 * and @confluentinc/kafka-javascript (librdkafka behind a KafkaJS-style API). Every variant is an
 * idempotent producer with acks=all; what varies is the client, the compression and how many sends
 * the application keeps in flight. Each variant runs in a child process of its own, so
 * `process.cpuUsage()` (user + system of every thread: librdkafka's threads and libuv's zlib pool
 * included) is that client's alone; the broker's CPU is not counted. Variants alternate over rounds.
 *
 *   KAFKA_PORT=39092 bash deploy/local/kafka.sh start
 *   npx tsx packages/log/src/kafka/bench.ts [--records 200000] [--rounds 2] [--brokers 127.0.0.1:39092]
 *
 * The confluent variants need @confluentinc/kafka-javascript installed, and kafkajs with zstd needs
 * zstd-napi; neither is a dependency of the project (BENCHMARKS.md says how they were built here),
 * and without them those variants are skipped.
 * After each run the topic's offsets must add up to exactly the records sent (no loss, no duplicate
 * from a retry), or the variant fails.
 */
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Kafka, CompressionTypes, logLevel, type Message } from 'kafkajs';
import { median, percentile } from '../../../../scripts/bench/stats.ts';
import { makeEntry, mulberry32 } from '../../../../scripts/bench/workload.ts';

const PER_SEND = 500;
const WARMUP = 10_000;
const PARTITIONS = 6;
const TENANTS = 20;
const CONFLUENT = '@confluentinc/kafka-javascript';
/** Native zstd for kafkajs, which has no zstd codec of its own; like CONFLUENT, not a dependency. */
const ZSTD = 'zstd-napi';
const load = createRequire(import.meta.url);

interface Variant {
  client: 'kafkajs' | 'confluent';
  compression: 'none' | 'gzip' | 'lz4' | 'zstd';
  /** Sends the application keeps in flight at once (the sink writer's batcher keeps up to 4). */
  concurrency: number;
  /** The client's max in-flight produce requests per broker connection. */
  maxInFlight: number;
}

const VARIANTS: Variant[] = [
  { client: 'kafkajs', compression: 'none', concurrency: 1, maxInFlight: 1 },
  { client: 'kafkajs', compression: 'gzip', concurrency: 1, maxInFlight: 1 },
  { client: 'kafkajs', compression: 'gzip', concurrency: 4, maxInFlight: 5 },
  { client: 'kafkajs', compression: 'zstd', concurrency: 1, maxInFlight: 1 },
  { client: 'confluent', compression: 'none', concurrency: 1, maxInFlight: 5 },
  { client: 'confluent', compression: 'gzip', concurrency: 1, maxInFlight: 5 },
  { client: 'confluent', compression: 'lz4', concurrency: 1, maxInFlight: 5 },
  { client: 'confluent', compression: 'zstd', concurrency: 1, maxInFlight: 5 },
  { client: 'confluent', compression: 'zstd', concurrency: 4, maxInFlight: 5 },
];

interface Result {
  variant: string;
  records: number;
  cpuSeconds: number;
  wallSeconds: number;
  p50Ms: number;
  p99Ms: number;
}

const name = (v: Variant): string => `${v.client} ${v.compression} c${v.concurrency} mif${v.maxInFlight}`;

function arg(flag: string, fallback: string): string {
  const i = process.argv.indexOf(flag);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

/** 32 sends' worth of ~400-byte entries of the `pnpm bench` mix, built before any clock starts. */
function buildSends(): Message[][] {
  const rng = mulberry32(20261201);
  const now = Date.now();
  return Array.from({ length: 32 }, (_, s) =>
    Array.from({ length: PER_SEND }, (_, i) => {
      const entry = { id: randomUUID(), ...makeEntry(rng, s * PER_SEND + i, now) };
      return { key: `tenant-${(s * PER_SEND + i) % TENANTS}`, value: Buffer.from(JSON.stringify(entry)), timestamp: String(now) };
    }),
  );
}

/** The part of the two clients' KafkaJS-style producer this bench uses. */
interface Sender {
  send(record: { topic: string; messages: Message[] }): Promise<unknown>;
  disconnect(): Promise<void>;
}

async function openSender(v: Variant, brokers: string[]): Promise<Sender> {
  if (v.client === 'kafkajs') {
    const kafka = new Kafka({ brokers, clientId: 'bench', logLevel: logLevel.ERROR });
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: v.maxInFlight, allowAutoTopicCreation: false });
    await producer.connect();
    const compression = { none: CompressionTypes.None, gzip: CompressionTypes.GZIP, lz4: CompressionTypes.LZ4, zstd: CompressionTypes.ZSTD }[v.compression];
    if (v.compression === 'zstd') {
      // kafkajs keeps its codecs in a registry that its ESM named exports do not expose.
      const { CompressionCodecs } = load('kafkajs') as { CompressionCodecs: Record<number, () => object> };
      const zstd = load(ZSTD) as { compress(b: Buffer, p: object): Buffer; decompress(b: Buffer): Buffer };
      CompressionCodecs[CompressionTypes.ZSTD] = () => ({
        compress: (encoder: { buffer: Buffer }) => Promise.resolve(zstd.compress(encoder.buffer, { compressionLevel: 3 })),
        decompress: (buffer: Buffer) => Promise.resolve(zstd.decompress(buffer)),
      });
    }
    return {
      send: (r) => producer.send({ ...r, acks: -1, compression }),
      disconnect: () => producer.disconnect(),
    };
  }
  // Not a dependency of the project: loaded by name so that typecheck passes without it.
  const { KafkaJS } = load(CONFLUENT) as {
    KafkaJS: { Kafka: new (config: object) => { producer(config: object): Sender & { connect(): Promise<void> } } };
  };
  const kafka = new KafkaJS.Kafka({ kafkaJS: { brokers, clientId: 'bench', logLevel: 1 } });
  const producer = kafka.producer({
    'linger.ms': 5,
    kafkaJS: { idempotent: true, acks: -1, maxInFlightRequests: v.maxInFlight, compression: v.compression },
  });
  await producer.connect();
  return producer;
}

async function runVariant(v: Variant, brokers: string[], records: number): Promise<Result> {
  const topic = `bench-produce-${randomUUID()}`;
  const admin = new Kafka({ brokers, clientId: 'bench-admin', logLevel: logLevel.ERROR }).admin();
  await admin.connect();
  try {
    await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: 1 }], waitForLeaders: true });
    const sends = buildSends();
    const sender = await openSender(v, brokers);
    try {
      for (let i = 0; i < WARMUP / PER_SEND; i++) await sender.send({ topic, messages: sends[i % sends.length] as Message[] });
      const latencies: number[] = [];
      let next = 0;
      const total = records / PER_SEND;
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      const worker = async (): Promise<void> => {
        while (next < total) {
          const messages = sends[next++ % sends.length] as Message[];
          const s = performance.now();
          await sender.send({ topic, messages });
          latencies.push(performance.now() - s);
        }
      };
      await Promise.all(Array.from({ length: v.concurrency }, worker));
      const wallSeconds = (performance.now() - t0) / 1000;
      const cpu = process.cpuUsage(cpu0);
      latencies.sort((a, b) => a - b);
      const offsets = await admin.fetchTopicOffsets(topic);
      const written = offsets.reduce((sum, o) => sum + Number(o.high) - Number(o.low), 0);
      if (written !== records + WARMUP) throw new Error(`${name(v)}: ${written} records in the topic, ${records + WARMUP} sent`);
      return { variant: name(v), records, cpuSeconds: (cpu.user + cpu.system) / 1e6, wallSeconds, p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99) };
    } finally {
      await sender.disconnect();
    }
  } finally {
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
  }
}

function installed(pkg: string): boolean {
  try {
    load.resolve(pkg);
    return true;
  } catch {
    return false;
  }
}

async function main(): Promise<void> {
  const brokers = arg('--brokers', `127.0.0.1:${process.env['KAFKA_PORT'] ?? '19092'}`).split(',');
  const records = Number(arg('--records', '200000'));
  const child = arg('--variant', '');
  if (child) {
    const v = VARIANTS.find((x) => name(x) === child);
    if (!v) throw new Error(`unknown variant ${child}`);
    process.stdout.write(JSON.stringify(await runVariant(v, brokers, records)) + '\n');
    return;
  }
  const rounds = Number(arg('--rounds', '2'));
  const variants = VARIANTS.filter((v) => (v.client === 'kafkajs' || installed(CONFLUENT)) && (v.client === 'confluent' || v.compression !== 'zstd' || installed(ZSTD)));
  if (variants.length < VARIANTS.length) console.error(`${CONFLUENT} or ${ZSTD} is not installed: ${VARIANTS.length - variants.length} variant(s) skipped`);
  const results = new Map<string, Result[]>();
  for (let r = 0; r < rounds; r++) {
    for (const v of r % 2 === 0 ? variants : [...variants].reverse()) {
      const out = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--variant', name(v), '--records', String(records), '--brokers', brokers.join(',')], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      if (out.status !== 0) throw new Error(`${name(v)} failed (exit ${out.status})`);
      const res = JSON.parse(out.stdout.trim().split('\n').pop() ?? '') as Result;
      console.error(`round ${r + 1}: ${res.variant}: ${(res.cpuSeconds / (res.records / 1e5)).toFixed(2)} cpu-s/100k, ${Math.round(res.records / res.wallSeconds)} rec/s`);
      results.set(res.variant, [...(results.get(res.variant) ?? []), res]);
    }
  }
  console.log('| variant | CPU-s per 100k records | records/s | send p50 ms | send p99 ms |');
  console.log('|---|---|---|---|---|');
  for (const [variant, rs] of results) {
    const med = (f: (x: Result) => number): number => median(rs.map(f));
    console.log(
      `| ${variant} | ${med((x) => x.cpuSeconds / (x.records / 1e5)).toFixed(2)} | ${Math.round(med((x) => x.records / x.wallSeconds)).toLocaleString('en-US')} | ${med((x) => x.p50Ms).toFixed(1)} | ${med((x) => x.p99Ms).toFixed(1)} |`,
    );
  }
}

await main();
