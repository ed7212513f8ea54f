import type { Consumer, ConsumerCrashEvent, EachBatchPayload, Kafka } from 'kafkajs';
import {
  LogUnavailableError,
  type BatchHandler,
  type ConsumerOptions,
  type LogConsumer,
  type MessageBatch,
  type StoredMessage,
} from '../types.ts';
import { describeError, type BackendLogger } from './logging.ts';
import type { ResolvedOptions } from './options.ts';
import { backoffMs, sleep, toStoredMessage, unavailable, withDeadline } from './util.ts';

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
  private readonly abort = new AbortController();
  private restartTimer: NodeJS.Timeout | undefined;
  private restarts = 0;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly kafka: Kafka,
    private readonly options: ConsumerOptions,
    private readonly opts: ResolvedOptions,
    private readonly logger: BackendLogger,
    private readonly onClosed: () => void,
  ) {}

  private get closed(): boolean {
    return this.abort.signal.aborted;
  }

  /**
   * Resolves once the consumer has connected and subscribed; batches are then delivered in the
   * background until close(). Rejects with LogUnavailableError if it cannot start at all.
   */
  async run(handler: BatchHandler): Promise<void> {
    if (this.closed) throw new LogUnavailableError('kafka: consumer is closed');
    if (this.handler) throw new Error('LogConsumer.run may be called once');
    this.handler = handler;
    await this.start();
  }

  private async start(): Promise<void> {
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
        // "Keep retrying until close": kafkajs restarts a crashed consumer only if this says so.
        restartOnFailure: () => Promise.resolve(!this.closed),
      },
    });
    this.consumer = consumer;
    consumer.on(consumer.events.CRASH, (event: ConsumerCrashEvent) => this.onCrash(consumer, event));
    try {
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        eachBatch: (payload) => this.eachBatch(payload),
      });
      this.restarts = 0;
    } catch (err) {
      this.consumer = undefined;
      await withDeadline(consumer.disconnect(), this.opts.closeTimeoutMs, 'consumer disconnect').catch(
        (e: unknown) => this.logger.debug('disconnect after failed start failed', describeError(e)),
      );
      throw unavailable(`consumer ${group} on ${topic}`, err);
    }
  }

  private onCrash(consumer: Consumer, event: ConsumerCrashEvent): void {
    const { error, restart } = event.payload;
    this.logger.error('consumer crashed', { group: this.options.group, restart, ...describeError(error) });
    // kafkajs restarts retriable crashes itself; a non-retriable one would leave the group silently
    // dead, so start a new kafkajs consumer after a backoff instead.
    if (restart || this.closed || consumer !== this.consumer) return;
    this.consumer = undefined;
    this.scheduleRestart();
  }

  private scheduleRestart(): void {
    this.restarts++;
    const delay = backoffMs(this.restarts, this.opts.handlerBackoffMs.min, this.opts.handlerBackoffMs.max);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.closed) return;
      this.start().catch((err: unknown) => {
        this.logger.error('consumer restart failed', { group: this.options.group, ...describeError(err) });
        if (!this.closed) this.scheduleRestart();
      });
    }, delay);
    this.restartTimer.unref();
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
      await sleep(backoffMs(attempt, this.opts.handlerBackoffMs.min, this.opts.handlerBackoffMs.max), this.abort.signal);
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

  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    // Wakes a handler backoff; the batch in flight finishes and commits, nothing new starts.
    this.abort.abort();
    if (this.restartTimer) clearTimeout(this.restartTimer);
    const consumer = this.consumer;
    this.consumer = undefined;
    try {
      if (consumer) {
        await withDeadline(consumer.disconnect(), this.opts.closeTimeoutMs, 'consumer disconnect').catch(
          (err: unknown) => this.logger.warn('consumer did not disconnect cleanly', describeError(err)),
        );
      }
    } finally {
      this.onClosed();
    }
  }
}
