import { randomUUID } from 'node:crypto';
import type { Admin, ConsumerCrashEvent, ITopicMetadata, Kafka, KafkaMessage } from 'kafkajs';
import { LogUnavailableError, type LogAdmin, type PartitionOffsets, type StoredMessage } from '../types.ts';
import { describeTopicConfigs, KAFKA_DEFAULT_MAX_MESSAGE_BYTES, readMaxMessageBytes, type TopicConfigValues, type TopicLimits } from './limits.ts';
import { describeError, type BackendLogger } from './logging.ts';
import type { ResolvedOptions } from './options.ts';
import { LEADER_MOVING, isTopicNotReady, retryWhileTopicNotReady, toStoredMessage, unavailable, withDeadline } from './util.ts';

/** Consumer restarts one admin read may take before it gives up. */
const READ_RESTARTS = 3;

/** One setting of an existing topic that is not what this service would have created. */
export interface TopicMismatch {
  topic: string;
  key: string;
  expected: string;
  actual: string;
}

/**
 * Compares a topic as it is with the configured settings. Partitions: only fewer than configured
 * is a problem (more were added on purpose; they are never removed). Settings left unconfigured
 * (the broker's default) are not checked.
 */
export function topicMismatches(
  topic: string,
  want: { partitions: number; replicationFactor: number | undefined; configs: Map<string, string> },
  have: { partitions: number; replicationFactor: number; configs: TopicConfigValues },
): TopicMismatch[] {
  const out: TopicMismatch[] = [];
  if (have.partitions < want.partitions) {
    out.push({ topic, key: 'partitions', expected: `>= ${want.partitions}`, actual: String(have.partitions) });
  }
  if (want.replicationFactor !== undefined && have.replicationFactor !== want.replicationFactor) {
    out.push({ topic, key: 'replication.factor', expected: String(want.replicationFactor), actual: String(have.replicationFactor) });
  }
  for (const [key, expected] of want.configs) {
    const actual = have.configs.get(key) ?? '(unset)';
    if (actual !== expected) out.push({ topic, key, expected, actual });
  }
  return out;
}

/** A kafkajs-shaped error the topic-readiness retry recognises. */
function notReady(message: string): Error {
  return Object.assign(new Error(message), { type: 'LEADER_NOT_AVAILABLE' });
}

export class KafkaLogAdmin implements LogAdmin {
  private admin: Admin | undefined;
  private connecting: Promise<Admin> | undefined;
  private closed = false;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly kafka: Kafka,
    private readonly opts: ResolvedOptions,
    private readonly logger: BackendLogger,
    private readonly limits: TopicLimits,
    private readonly onClosed: () => void,
  ) {}

  private connected(): Promise<Admin> {
    if (this.closed) return Promise.reject(new LogUnavailableError('kafka: admin is closed'));
    if (this.admin) return Promise.resolve(this.admin);
    this.connecting ??= (async () => {
      const admin = this.kafka.admin({ retry: this.opts.retry });
      try {
        await admin.connect();
      } catch (err) {
        await admin.disconnect().catch(() => undefined);
        throw err;
      } finally {
        this.connecting = undefined;
      }
      this.admin = admin;
      return admin;
    })();
    return this.connecting;
  }

  /** Runs one admin call with the backend's error contract and an upper bound on its duration. */
  private async call<T>(what: string, fn: (admin: Admin) => Promise<T>, deadlineMs = this.opts.requestTimeoutMs * 2): Promise<T> {
    try {
      const work = this.connected().then(fn);
      return await withDeadline(work, deadlineMs, what);
    } catch (err) {
      throw unavailable(what, err);
    }
  }

  /** Topic configs this log sets at creation and checks on existing topics. */
  private wantedConfigs(): Map<string, string> {
    const configs = new Map<string, string>();
    if (this.opts.minInsyncReplicas !== undefined) configs.set('min.insync.replicas', String(this.opts.minInsyncReplicas));
    if (this.opts.retentionMs !== undefined) configs.set('retention.ms', String(this.opts.retentionMs));
    return configs;
  }

  /**
   * Creates the topic with the configured partitions, replication factor, `min.insync.replicas`
   * and retention if it does not exist; then waits (bounded) until it has leaders, records its size
   * limit for producers, and warns about every setting an existing topic has differently.
   */
  async ensureTopic(topic: string, partitions: number): Promise<void> {
    const want = { partitions, replicationFactor: this.opts.replicationFactor, configs: this.wantedConfigs() };
    const whileNotReady = <T>(what: string, fn: () => Promise<T>): Promise<T> =>
      retryWhileTopicNotReady(fn, {
        attempts: this.opts.topicReadyAttempts,
        minMs: 100,
        maxMs: 2_000,
        onRetry: (attempt, waitMs, err) => this.logger.warn('topic not ready yet; retrying', { topic, what, attempt, waitMs, ...describeError(err) }),
      });
    // Room for the readiness retries (about 15 s at most) on top of the calls themselves.
    const deadline = this.opts.requestTimeoutMs * 2 + 20_000;
    await this.call(
      `create topic ${topic}`,
      async (admin) => {
        // Looking first keeps every service start from logging a broker-side TOPIC_ALREADY_EXISTS.
        if (!(await admin.listTopics()).includes(topic)) {
          // Resolves false when another replica created it first; it is then checked like any other.
          // Leaders are awaited below with our own bounded retry: kafkajs' waitForLeaders gives up
          // with a timeout a loaded broker can exceed.
          await admin.createTopics({
            waitForLeaders: false,
            timeout: this.opts.requestTimeoutMs,
            topics: [
              {
                topic,
                numPartitions: partitions,
                ...(want.replicationFactor !== undefined ? { replicationFactor: want.replicationFactor } : {}),
                configEntries: [...want.configs].map(([name, value]) => ({ name, value })),
              },
            ],
          });
        }
        const meta = await whileNotReady('metadata', async () => {
          const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
          const found: ITopicMetadata | undefined = topics.find((t) => t.name === topic);
          if (!found || found.partitions.length === 0) throw notReady(`topic ${topic} has no partitions yet`);
          const leaderless = found.partitions.filter((p) => p.leader < 0);
          if (leaderless.length > 0) throw notReady(`topic ${topic}: ${leaderless.length} partition(s) without a leader yet`);
          return found;
        });
        // The controller names leaders before every leader serves its partitions: a broker under
        // load answers ListOffsets with NOT_LEADER_FOR_PARTITION for a moment after. Ready means
        // the offsets can be read.
        await whileNotReady('offsets', () => admin.fetchTopicOffsets(topic));
        let configs: TopicConfigValues | undefined;
        try {
          configs = await whileNotReady('configs', () => describeTopicConfigs(admin, topic, [...want.configs.keys(), 'max.message.bytes']));
          const maxMessageBytes = Number(configs.get('max.message.bytes'));
          this.limits.set(topic, Number.isSafeInteger(maxMessageBytes) && maxMessageBytes > 0 ? maxMessageBytes : KAFKA_DEFAULT_MAX_MESSAGE_BYTES);
        } catch (err) {
          // Without the DescribeConfigs right the service still runs; it just cannot check. Producers
          // then assume Kafka's default limit and split if the broker says otherwise.
          this.logger.warn('could not read topic settings; not checked', { topic, ...describeError(err) });
        }
        const have = {
          partitions: meta.partitions.length,
          replicationFactor: Math.min(...meta.partitions.map((p) => p.replicas.length)),
          // Unread settings are not reported as differing.
          configs: configs ?? want.configs,
        };
        for (const m of topicMismatches(topic, want, have)) {
          this.logger.warn('topic setting differs from the configuration', { ...m });
        }
      },
      deadline,
    );
  }

  /** The topic's `max.message.bytes` as the broker has it now. */
  maxMessageBytes(topic: string): Promise<number> {
    return this.call(`describe ${topic}`, (admin) => readMaxMessageBytes(admin, topic));
  }

  async partitions(topic: string): Promise<PartitionOffsets[]> {
    // A leader moving (a broker restarting, an election) makes this fail for a moment: retried,
    // bounded. A topic that does not exist fails at once.
    const offsets = await this.call(`offsets of ${topic}`, (admin) =>
      retryWhileTopicNotReady(() => admin.fetchTopicOffsets(topic), { attempts: 5, minMs: 100, maxMs: 1_000, retryable: (e) => isTopicNotReady(e, LEADER_MOVING) }),
    );
    return offsets
      .map((o) => ({ partition: o.partition, low: Number(o.low), high: Number(o.high) }))
      .sort((a, b) => a.partition - b.partition);
  }

  async committed(group: string, topic: string): Promise<Array<{ partition: number; offset: number }>> {
    const result = await this.call(`committed offsets of ${group} on ${topic}`, (admin) =>
      admin.fetchOffsets({ groupId: group, topics: [topic] }),
    );
    const partitions = result.find((t) => t.topic === topic)?.partitions ?? [];
    return partitions
      .map((p) => ({ partition: p.partition, offset: Number(p.offset) }))
      .map((p) => (p.offset < 0 ? { partition: p.partition, offset: -1 } : p))
      .sort((a, b) => a.partition - b.partition);
  }

  /**
   * kafkajs has no assign(): it can only read through a consumer group. So this joins a throwaway
   * group (never committed to, deleted afterwards), seeks the one partition and pauses the rest.
   */
  async read(topic: string, partition: number, offset: number, maxMessages: number): Promise<StoredMessage[]> {
    if (maxMessages <= 0) return [];
    const all = await this.partitions(topic);
    const range = all.find((p) => p.partition === partition);
    if (!range) throw new RangeError(`kafka: topic ${topic} has no partition ${partition}`);
    const start = Math.max(offset, range.low);
    // The high watermark at the start bounds the read: it never waits for messages not yet written.
    const end = Math.min(range.high, start + maxMessages);
    if (start >= end) return [];

    const groupId = `${this.opts.readGroupPrefix}-${randomUUID()}`;
    const consumer = this.kafka.consumer({
      groupId,
      allowAutoTopicCreation: false,
      // Short polls: the first fetch may still run from "latest" before the seek applies.
      maxWaitTimeInMs: 100,
      sessionTimeout: this.opts.sessionTimeoutMs,
      heartbeatInterval: this.opts.heartbeatIntervalMs,
      // A fresh group on a busy broker can crash its first join (coordinator still loading); a few
      // restarts are allowed, each re-seeking on its GROUP_JOIN below, then the read fails.
      retry: { ...this.opts.retry, restartOnFailure: () => Promise.resolve(++restarts <= READ_RESTARTS) },
    });
    let restarts = 0;
    const out: StoredMessage[] = [];
    let finish!: () => void;
    let fail!: (err: Error) => void;
    const done = new Promise<void>((resolve, reject) => {
      finish = resolve;
      fail = reject;
    });
    // A crash can still arrive after the read finished (during disconnect); nobody awaits it then.
    done.catch(() => undefined);
    consumer.on(consumer.events.CRASH, (event: ConsumerCrashEvent) => {
      if (!event.payload.restart) fail(event.payload.error);
    });
    const others = all.map((p) => p.partition).filter((p) => p !== partition);
    // Seek (and pause the other partitions) on every join: kafkajs forgets both when it restarts
    // the consumer, and a seek before the group exists throws. `next` resumes after what was taken.
    let next = start;
    consumer.on(consumer.events.GROUP_JOIN, () => {
      try {
        consumer.seek({ topic, partition, offset: String(next) });
        if (others.length > 0) consumer.pause([{ topic, partitions: others }]);
      } catch (err) {
        fail(err as Error);
      }
    });
    const take = (messages: KafkaMessage[]): void => {
      for (const m of messages) {
        const at = Number(m.offset);
        const last = out[out.length - 1];
        if (at < start || (last && at <= last.offset)) continue;
        next = at + 1;
        if (at >= end) {
          finish();
          return;
        }
        out.push(toStoredMessage(topic, partition, m));
        if (out.length >= maxMessages || at >= end - 1) {
          finish();
          return;
        }
      }
    };

    try {
      await withDeadline(
        (async () => {
          await consumer.connect();
          // fromBeginning false: partitions we do not read start at "latest" and fetch nothing.
          await consumer.subscribe({ topic, fromBeginning: false });
          await consumer.run({
            // With autoCommit off, kafkajs' seek only moves the fetch position; it commits nothing.
            autoCommit: false,
            eachBatchAutoResolve: false,
            eachBatch: ({ batch, resolveOffset, isStale }) => {
              if (batch.partition === partition && !isStale()) {
                take(batch.messages);
                resolveOffset(batch.lastOffset());
              }
              return Promise.resolve();
            },
          });
          await done;
        })(),
        this.opts.readTimeoutMs,
        `read ${topic}/${partition} from ${start}`,
      );
      return out;
    } catch (err) {
      throw unavailable(`read ${topic}/${partition} from ${start}`, err);
    } finally {
      await withDeadline(consumer.disconnect(), this.opts.closeTimeoutMs, 'read consumer disconnect').catch(
        (err: unknown) => this.logger.debug('read consumer disconnect failed', describeError(err)),
      );
      await this.deleteGroup(groupId);
    }
  }

  private async deleteGroup(groupId: string): Promise<void> {
    try {
      const admin = await this.connected();
      await withDeadline(admin.deleteGroups([groupId]), this.opts.requestTimeoutMs, `delete group ${groupId}`);
    } catch (err) {
      // Usually the group is already gone (it never committed an offset); either way it holds no
      // state a later reader could trip over.
      this.logger.debug('could not delete read group', { groupId, ...describeError(err) });
    }
  }

  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    this.closed = true;
    const pending = this.connecting;
    const admin = this.admin ?? (await pending?.catch(() => undefined));
    this.admin = undefined;
    try {
      if (admin) {
        await withDeadline(admin.disconnect(), this.opts.closeTimeoutMs, 'admin disconnect').catch((err: unknown) =>
          this.logger.warn('admin did not disconnect cleanly', describeError(err)),
        );
      }
    } finally {
      this.onClosed();
    }
  }
}
