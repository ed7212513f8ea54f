import type { Consumer, ConsumerCrashEvent, EachBatchPayload, Kafka } from 'kafkajs';
import {
  type BatchHandler,
  type ConsumerOptions,
  type LogConsumer,
  type MessageBatch,
  type StoredMessage,
} from '../types.ts';
import { describeError, type BackendLogger } from './logging.ts';
import type { ResolvedOptions } from './options.ts';
import { backoffMs } from '@ingest/queue';
import { sleep, toStoredMessage, withDeadline } from './util.ts';

/**
 * Cuts one partition's fetched messages into handler batches of at most `maxMessages` messages and
 * `maxBytes` value bytes (a single larger message still goes alone, or it could never be handled).
 */
export function splitIntoBatches(
  topic: string,
  partition: number,
  messages: StoredMessage[],
  maxMessages: number,
  maxBytes: number,
): MessageBatch[] {
  const batches: MessageBatch[] = [];
  let current: StoredMessage[] = [];
  let bytes = 0;
  const flush = (): void => {
    const first = current[0];
    const last = current[current.length - 1];
    if (first && last) {
      batches.push({ topic, partition, messages: current, firstOffset: first.offset, lastOffset: last.offset });
    }
    current = [];
    bytes = 0;
  };
  for (const m of messages) {
    const size = m.value.length;
    if (current.length > 0 && (current.length >= maxMessages || bytes + size > maxBytes)) flush();
    current.push(m);
    bytes += size;
  }
  flush();
  return batches;
}

// kafkajs' own isRebalancing() is not exported; these are the errors it treats as "rejoin".
const REBALANCE_ERRORS = new Set(['REBALANCE_IN_PROGRESS', 'NOT_COORDINATOR_FOR_GROUP', 'ILLEGAL_GENERATION']);

function isRebalance(err: unknown): boolean {
  const type = (err as { type?: unknown } | null)?.type;
  return typeof type === 'string' && REBALANCE_ERRORS.has(type);
}

export class KafkaLogConsumer implements LogConsumer {
  private consumer: Consumer | undefined;
  private handler: BatchHandler | undefined;
  private running: Promise<void> | undefined;
  private starting: Promise<{ dead: Promise<unknown> }> | undefined;
  private readonly abort = new AbortController();
  private readonly aborted: Promise<void>;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly kafka: Kafka,
    private readonly options: ConsumerOptions,
    private readonly opts: ResolvedOptions,
    private readonly logger: BackendLogger,
    private readonly onClosed: () => void,
  ) {
    this.aborted = new Promise((resolve) => this.abort.signal.addEventListener('abort', () => resolve(), { once: true }));
  }

  private get closed(): boolean {
    return this.abort.signal.aborted;
  }

  /**
   * Consumes until close(), then resolves (as the embedded log does). A broker that is down or a
   * topic that does not exist yet is retried with backoff, never a reason to give up: a loader
   * that stopped consuming would look healthy while its lag grows.
   */
  run(handler: BatchHandler): Promise<void> {
    if (this.handler) return Promise.reject(new Error('LogConsumer.run may be called once'));
    if (this.closed) return Promise.resolve();
    this.handler = handler;
    this.running = this.supervise();
    return this.running;
  }

  private async supervise(): Promise<void> {
    const { group, topic } = this.options;
    let attempt = 0;
    while (!this.closed) {
      let failure: unknown;
      const startedAt = Date.now();
      try {
        const starting = this.start();
        this.starting = starting;
        const { dead } = await starting.finally(() => {
          if (this.starting === starting) this.starting = undefined;
        });
        failure = await Promise.race([dead, this.aborted]);
      } catch (err) {
        failure = err;
      }
      if (this.closed) break;
      // A consumer that ran for a while earned a fresh, short backoff.
      attempt = Date.now() - startedAt > 60_000 ? 1 : attempt + 1;
      this.logger.warn('consumer not running; retrying', { group, topic, attempt, ...describeError(failure) });
      await sleep(this.backoff(attempt), this.abort.signal);
    }
  }

  /**
   * Connects, subscribes and starts a kafkajs consumer. Resolves once it runs, with a promise that
   * resolves (with the cause) if that consumer later dies for good. (Wrapped in an object: an async
   * function returning a bare promise would wait for it.)
   */
  private async start(): Promise<{ dead: Promise<unknown> }> {
    const { group, topic, maxBatchBytes, maxWaitMs } = this.options;
    const consumer = this.kafka.consumer({
      groupId: group,
      allowAutoTopicCreation: false,
      sessionTimeout: this.opts.sessionTimeoutMs,
      heartbeatInterval: this.opts.heartbeatIntervalMs,
      maxWaitTimeInMs: maxWaitMs,
      // The broker holds a fetch until a handler batch's worth of bytes (or maxWaitMs) is there.
      minBytes: Math.max(1, Math.min(maxBatchBytes, 1 << 20)),
      maxBytesPerPartition: Math.max(maxBatchBytes, 1 << 20),
      retry: {
        ...this.opts.retry,
        // kafkajs restarts a consumer after a retriable crash only if this says so.
        restartOnFailure: () => Promise.resolve(!this.closed),
      },
    });
    let died!: (cause: unknown) => void;
    const dead = new Promise<unknown>((resolve) => {
      died = resolve;
    });
    consumer.on(consumer.events.CRASH, (event: ConsumerCrashEvent) => {
      const { error, restart } = event.payload;
      this.logger.error('consumer crashed', { group, topic, restart, ...describeError(error) });
      // kafkajs restarts retriable crashes itself; after any other the group would be silently
      // dead, so the supervisor starts a new kafkajs consumer.
      if (!restart) died(error);
    });
    this.consumer = consumer;
    try {
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        eachBatch: (payload) => this.eachBatch(payload),
      });
    } catch (err) {
      await this.disconnect(consumer);
      throw err;
    }
    return { dead };
  }

  private async disconnect(consumer: Consumer): Promise<void> {
    if (this.consumer === consumer) this.consumer = undefined;
    await withDeadline(consumer.disconnect(), this.opts.closeTimeoutMs, 'consumer disconnect').catch((err: unknown) =>
      this.logger.warn('consumer did not disconnect cleanly', describeError(err)),
    );
  }

  private async eachBatch(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    const stored = batch.messages.map((m) => toStoredMessage(batch.topic, batch.partition, m));
    const { maxBatchMessages, maxBatchBytes } = this.options;
    for (const chunk of splitIntoBatches(batch.topic, batch.partition, stored, maxBatchMessages, maxBatchBytes)) {
      if (!this.shouldContinue(payload)) return;
      if (!(await this.handleUntilDone(chunk, payload))) return;
      // Commit before resolving: if the commit fails, kafkajs re-fetches from the last resolved
      // offset and the same batch is handled again (at-least-once; dedup is downstream). The
      // payload's commit goes straight to the group, so it also works while close() drains.
      await payload.commitOffsetsIfNecessary({
        topics: [{ topic: chunk.topic, partitions: [{ partition: chunk.partition, offset: String(chunk.lastOffset + 1) }] }],
      });
      payload.resolveOffset(String(chunk.lastOffset));
    }
  }

  private shouldContinue(payload: EachBatchPayload): boolean {
    return !this.closed && payload.isRunning() && !payload.isStale();
  }

  /**
   * Calls the handler until it resolves (true), or gives up when the consumer closes or loses the
   * partition (false). Retries reuse the same batch, so a dedup token derived from its offset range
   * stays stable.
   */
  private async handleUntilDone(batch: MessageBatch, payload: EachBatchPayload): Promise<boolean> {
    const handler = this.handler;
    if (!handler) return false;
    for (let attempt = 1; ; attempt++) {
      // A slow handler (a ClickHouse insert under load) must not cost us the group membership.
      const beat = setInterval(() => {
        payload.heartbeat().catch((err: unknown) => this.logger.debug('heartbeat failed', describeError(err)));
      }, this.opts.heartbeatIntervalMs);
      beat.unref();
      try {
        await handler(batch);
        return true;
      } catch (err) {
        this.logger.warn('batch handler failed; retrying the same batch', {
          group: this.options.group,
          topic: batch.topic,
          partition: batch.partition,
          firstOffset: batch.firstOffset,
          lastOffset: batch.lastOffset,
          attempt,
          ...describeError(err),
        });
      } finally {
        clearInterval(beat);
      }
      if (!this.shouldContinue(payload)) return false;
      await sleep(this.backoff(attempt), this.abort.signal);
      if (!this.shouldContinue(payload)) return false;
      try {
        await payload.heartbeat();
      } catch (err) {
        // The partition may have moved to another member; whoever owns it re-reads from the commit.
        if (isRebalance(err)) return false;
        this.logger.debug('heartbeat failed', describeError(err));
      }
    }
  }

  /** Jittered: many loader replicas that lost the broker together should not come back together. */
  private backoff(attempt: number): number {
    return backoffMs(attempt, { initialMs: this.opts.handlerBackoffMs.min, maxMs: this.opts.handlerBackoffMs.max });
  }

  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    // Wakes a handler or restart backoff; the batch in flight finishes and commits, nothing new starts.
    this.abort.abort();
    try {
      // A start under way would otherwise bring a consumer up after we disconnected it.
      await this.starting?.catch(() => undefined);
      const consumer = this.consumer;
      if (consumer) await this.disconnect(consumer);
      await this.running;
    } finally {
      this.onClosed();
    }
  }
}
