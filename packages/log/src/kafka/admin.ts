import { randomUUID } from 'node:crypto';
import type { Admin, ConsumerCrashEvent, Kafka, KafkaMessage } from 'kafkajs';
import { LogUnavailableError, type LogAdmin, type PartitionOffsets, type StoredMessage } from '../types.ts';
import { describeError, type BackendLogger } from './logging.ts';
import type { ResolvedOptions } from './options.ts';
import { toStoredMessage, unavailable, withDeadline } from './util.ts';

export class KafkaLogAdmin implements LogAdmin {
  private admin: Admin | undefined;
  private connecting: Promise<Admin> | undefined;
  private closed = false;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly kafka: Kafka,
    private readonly opts: ResolvedOptions,
    private readonly logger: BackendLogger,
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
  private async call<T>(what: string, fn: (admin: Admin) => Promise<T>): Promise<T> {
    try {
      const work = this.connected().then(fn);
      return await withDeadline(work, this.opts.requestTimeoutMs * 2, what);
    } catch (err) {
      throw unavailable(what, err);
    }
  }

  async ensureTopic(topic: string, partitions: number): Promise<void> {
    await this.call(`create topic ${topic}`, async (admin) => {
      // Looking first keeps every service start from logging a broker-side TOPIC_ALREADY_EXISTS.
      if ((await admin.listTopics()).includes(topic)) return false;
      // Resolves false when the topic already exists; its partition count is then left alone.
      return admin.createTopics({
        waitForLeaders: true,
        timeout: this.opts.requestTimeoutMs,
        topics: [
          {
            topic,
            numPartitions: partitions,
            ...(this.opts.replicationFactor !== undefined ? { replicationFactor: this.opts.replicationFactor } : {}),
          },
        ],
      });
    });
  }

  async partitions(topic: string): Promise<PartitionOffsets[]> {
    const offsets = await this.call(`offsets of ${topic}`, (admin) => admin.fetchTopicOffsets(topic));
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
      retry: { ...this.opts.retry, restartOnFailure: () => Promise.resolve(false) },
    });
    const out: StoredMessage[] = [];
    let finish!: () => void;
    let fail!: (err: Error) => void;
    const done = new Promise<void>((resolve, reject) => {
      finish = resolve;
      fail = reject;
    });
    // A crash can still arrive after the read finished (during disconnect); nobody awaits it then.
    done.catch(() => undefined);
    consumer.on(consumer.events.CRASH, (event: ConsumerCrashEvent) => fail(event.payload.error));
    const take = (messages: KafkaMessage[]): void => {
      for (const m of messages) {
        const at = Number(m.offset);
        const last = out[out.length - 1];
        if (at < start || (last && at <= last.offset)) continue;
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
          consumer.seek({ topic, partition, offset: String(start) });
          const others = all.map((p) => p.partition).filter((p) => p !== partition);
          if (others.length > 0) consumer.pause([{ topic, partitions: others }]);
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
