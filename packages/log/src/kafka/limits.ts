import kafkajs, { type Admin } from 'kafkajs';
import { describeError, type BackendLogger } from './logging.ts';

// kafkajs is CommonJS and Node's ESM loader sees only some of its named exports (not this enum);
// a named import passes under vitest and fails at `pnpm start`.
const { ConfigResourceTypes } = kafkajs;

/** Kafka's own default for `message.max.bytes`, used when the broker will not say (no DescribeConfigs ACL). */
export const KAFKA_DEFAULT_MAX_MESSAGE_BYTES = 1_048_588;

/**
 * Upper bound of one record's size inside a v2 record batch: length, attributes, timestamp and
 * offset deltas, key/value lengths and the header count are varints (at most 5 or 10 bytes each),
 * plus two varint lengths per header. An upper bound, so a chunk sized with it always fits.
 */
export function estimateRecordBytes(m: { key: string; value: Buffer; headers?: Record<string, string> | undefined }): number {
  let bytes = 36 + Buffer.byteLength(m.key) + m.value.byteLength;
  if (m.headers) {
    for (const [name, value] of Object.entries(m.headers)) bytes += 10 + Buffer.byteLength(name) + Buffer.byteLength(value);
  }
  return bytes;
}

/**
 * Record bytes one produce request may carry so its record batch stays under `limit`. The broker
 * checks a partition's whole batch (61-byte header plus 12 bytes of log overhead); gzip can grow
 * incompressible input by a few bytes per 64 KiB block. A fixed 1 KiB plus 0.1 % covers both.
 */
export function requestBudget(limit: number): number {
  return Math.max(1, limit - 1024 - Math.ceil(limit / 1000));
}

/**
 * Cuts record sizes into consecutive [start, end) runs of at most `budget` bytes each. A record
 * larger than the budget gets a run of its own (the caller refuses those before sending).
 */
export function chunkBySize(sizes: readonly number[], budget: number, from = 0, maxRuns = Number.POSITIVE_INFINITY): Array<[number, number]> {
  const runs: Array<[number, number]> = [];
  let start = from;
  let bytes = 0;
  for (let i = from; i < sizes.length; i++) {
    const size = sizes[i] ?? 0;
    if (i > start && bytes + size > budget) {
      runs.push([start, i]);
      if (runs.length >= maxRuns) return runs;
      start = i;
      bytes = 0;
    }
    bytes += size;
  }
  if (start < sizes.length) runs.push([start, sizes.length]);
  return runs;
}

const TOO_LARGE = new Set(['MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE']);

/** Finds a kafkajs protocol error type anywhere in a chain of wrappers (retriers, aggregates, our own). */
export function protocolErrorTypes(err: unknown, depth = 0): string[] {
  if (err === null || typeof err !== 'object' || depth > 8) return [];
  const e = err as { type?: unknown; cause?: unknown; originalError?: unknown; errors?: unknown };
  const out: string[] = typeof e.type === 'string' ? [e.type] : [];
  out.push(...protocolErrorTypes(e.cause, depth + 1), ...protocolErrorTypes(e.originalError, depth + 1));
  if (Array.isArray(e.errors)) for (const inner of e.errors) out.push(...protocolErrorTypes(inner, depth + 1));
  return out;
}

/** The broker refused a produce request as too large (MESSAGE_TOO_LARGE or RECORD_LIST_TOO_LARGE). */
export function isTooLarge(err: unknown): boolean {
  return protocolErrorTypes(err).some((t) => TOO_LARGE.has(t));
}

/** What a topic's configuration says, as strings (Kafka's own representation). */
export type TopicConfigValues = Map<string, string>;

/** Reads topic configs; the admin client is the caller's. */
export async function describeTopicConfigs(admin: Admin, topic: string, names: string[]): Promise<TopicConfigValues> {
  const res = await admin.describeConfigs({
    includeSynonyms: false,
    resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: names }],
  });
  const out: TopicConfigValues = new Map();
  for (const r of res.resources) {
    for (const c of r.configEntries) out.set(c.configName, c.configValue);
  }
  return out;
}

/** The broker-wide `message.max.bytes` of one broker of the cluster, or undefined. */
export async function describeBrokerMaxMessageBytes(admin: Admin): Promise<number | undefined> {
  const { brokers } = await admin.describeCluster();
  const broker = brokers[0];
  if (!broker) return undefined;
  const res = await admin.describeConfigs({
    includeSynonyms: false,
    resources: [{ type: ConfigResourceTypes.BROKER, name: String(broker.nodeId), configNames: ['message.max.bytes'] }],
  });
  const value = res.resources[0]?.configEntries.find((c) => c.configName === 'message.max.bytes')?.configValue;
  return positiveInt(value);
}

function positiveInt(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

/**
 * Per-topic produce limits, shared by every producer and admin of one DurableLog. `ensureTopic`
 * records what it read at start; a producer sending to a topic nobody described asks the broker
 * (through `read`). A MESSAGE_TOO_LARGE lowers the learned budget, so the next send starts small enough.
 */
export class TopicLimits {
  private readonly limits = new Map<string, number>();
  private readonly learned = new Map<string, number>();
  private readonly inFlight = new Map<string, Promise<number>>();

  constructor(
    private readonly read: (topic: string) => Promise<number>,
    private readonly logger: BackendLogger,
  ) {}

  /** Records a topic's limit (bytes per record batch) read elsewhere. */
  set(topic: string, maxMessageBytes: number): void {
    this.limits.set(topic, maxMessageBytes);
  }

  /**
   * For a produce request to `topic`: the broker's limit, the record bytes that fit under it, and
   * the record bytes to put in one request (lower once the broker refused a request as too large).
   */
  async budget(topic: string): Promise<{ maxMessageBytes: number; recordLimit: number; budget: number }> {
    const maxMessageBytes = this.limits.get(topic) ?? (await this.describe(topic));
    const recordLimit = requestBudget(maxMessageBytes);
    return { maxMessageBytes, recordLimit, budget: Math.min(recordLimit, this.learned.get(topic) ?? Number.POSITIVE_INFINITY) };
  }

  /** The broker refused `bytes` as too large: later requests to the topic stay below half of it. */
  lower(topic: string, bytes: number): number {
    const next = Math.max(1, Math.floor(bytes / 2));
    const current = this.learned.get(topic);
    if (current === undefined || next < current) this.learned.set(topic, next);
    // The limit may have been changed on the broker: read it again on the next send.
    this.limits.delete(topic);
    return this.learned.get(topic) ?? next;
  }

  private describe(topic: string): Promise<number> {
    let pending = this.inFlight.get(topic);
    if (!pending) {
      pending = this.readOrDefault(topic).finally(() => this.inFlight.delete(topic));
      this.inFlight.set(topic, pending);
    }
    return pending;
  }

  private async readOrDefault(topic: string): Promise<number> {
    try {
      const limit = await this.read(topic);
      this.limits.set(topic, limit);
      return limit;
    } catch (err) {
      // Without DescribeConfigs rights we still produce, sized for Kafka's default; a smaller
      // broker limit is then found by splitting on MESSAGE_TOO_LARGE.
      this.logger.warn('could not read the topic size limit; assuming the Kafka default', {
        topic,
        assumed: KAFKA_DEFAULT_MAX_MESSAGE_BYTES,
        ...describeError(err),
      });
      return KAFKA_DEFAULT_MAX_MESSAGE_BYTES;
    }
  }
}

/**
 * The limit the broker applies to a topic's record batches: the topic's `max.message.bytes`
 * (which is the broker's `message.max.bytes` unless the topic overrides it). The broker's own value
 * is the fallback when the topic entry is missing.
 */
export async function readMaxMessageBytes(admin: Admin, topic: string): Promise<number> {
  const topicValue = positiveInt((await describeTopicConfigs(admin, topic, ['max.message.bytes'])).get('max.message.bytes'));
  if (topicValue !== undefined) return topicValue;
  return (await describeBrokerMaxMessageBytes(admin)) ?? KAFKA_DEFAULT_MAX_MESSAGE_BYTES;
}
