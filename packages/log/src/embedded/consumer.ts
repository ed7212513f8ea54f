/**
 * Consumer of the embedded log. One process owns the log, so a group has no rebalancing: a consumer
 * reads every partition of its topic, round-robin, one handler call at a time.
 *
 * Batches are formed per partition: up to maxBatchMessages / maxBatchBytes, handed over as soon as
 * they are full, or maxWaitMs after the first message of an incomplete batch was seen. Once handed
 * over, a batch is frozen: a throwing handler gets exactly the same messages again after a backoff,
 * so an idempotency token derived from the offset range stays the same.
 */
import type { BatchHandler, ConsumerOptions, LogConsumer, MessageBatch, StoredMessage } from '../types.ts';
import { backoffMs } from '@ingest/queue';
import type { Partition } from './partition.ts';
import type { TopicState } from './topic.ts';

export interface ConsumerErrorInfo {
  group: string;
  topic: string;
  partition: number;
  /** handler: the batch handler threw; read/commit: the log itself failed (retried too). */
  phase: 'handler' | 'read' | 'commit';
  attempt: number;
}

/** What a consumer needs from the log that created it. */
export interface ConsumerHost {
  openTopic(topic: string): Promise<TopicState | null>;
  committedOffset(group: string, topic: string, partition: number): Promise<number | undefined>;
  commit(group: string, topic: string, partition: number, offset: number): Promise<void>;
  /** Rejects a second running consumer for the same group and topic; returns the release. */
  claim(group: string, topic: string): () => void;
  onError(err: unknown, info: ConsumerErrorInfo): void;
  noteOffsetReset(): void;
  readonly pollIntervalMs: number;
  readonly retryInitialMs: number;
  readonly retryMaxMs: number;
}

interface PartitionCursor {
  partition: Partition;
  /** Next offset to fetch into `pending`. */
  fetch: number;
  pending: StoredMessage[];
  pendingBytes: number;
  /** A byte budget stopped the last fetch: the batch cannot grow. */
  full: boolean;
  /** When the first pending message was seen (ms, monotonic). */
  since: number;
}

export class EmbeddedConsumer implements LogConsumer {
  private closed = false;
  private closing: Promise<void> | null = null;
  private running: Promise<void> | null = null;
  /** Wake-ups of whatever this consumer is sleeping on, so close() interrupts waits and backoffs. */
  private readonly wakers = new Set<() => void>();

  constructor(
    private readonly host: ConsumerHost,
    private readonly opts: ConsumerOptions,
  ) {
    for (const k of ['maxBatchMessages', 'maxBatchBytes'] as const) {
      if (!Number.isSafeInteger(opts[k]) || opts[k] < 1) throw new RangeError(`${k} must be a positive integer`);
    }
    if (!Number.isFinite(opts.maxWaitMs) || opts.maxWaitMs < 0) throw new RangeError('maxWaitMs must be >= 0');
  }

  run(handler: BatchHandler): Promise<void> {
    if (this.running !== null) return Promise.reject(new Error('this consumer is already running'));
    if (this.closed) return Promise.resolve();
    this.running = this.loop(handler);
    return this.running;
  }

  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    this.closed = true;
    this.wakeAll();
    // The run() caller sees the loop's outcome; close only waits for it to stop.
    if (this.running !== null) await this.running.catch(() => undefined);
  }

  private wakeAll(): void {
    for (const w of [...this.wakers]) w();
  }

  private async loop(handler: BatchHandler): Promise<void> {
    const { group, topic: topicName } = this.opts;
    let topic: TopicState | null = null;
    // A read-only log cannot create the topic: wait for its owner to.
    while (!this.closed && (topic = await this.host.openTopic(topicName)) === null) {
      await this.sleep(this.host.pollIntervalMs);
    }
    if (topic === null || this.closed) return;
    const release = this.host.claim(group, topicName);
    try {
      const cursors: PartitionCursor[] = [];
      for (const partition of topic.partitions) {
        for (let attempt = 0; !this.closed; attempt++) {
          try {
            cursors.push(await this.startCursor(partition));
            break;
          } catch (err) {
            this.host.onError(err, { group, topic: topicName, partition: partition.id, phase: 'read', attempt });
            await this.sleep(this.backoff(attempt));
          }
        }
      }
      let readFailures = 0;
      while (!this.closed) {
        const seen = topic.version;
        let delivered = false;
        let readFailed = false;
        let deadline = Number.POSITIVE_INFINITY;
        for (const cursor of cursors) {
          if (this.closed) break;
          try {
            await this.fill(cursor);
          } catch (err) {
            readFailed = true;
            this.host.onError(err, { group, topic: topicName, partition: cursor.partition.id, phase: 'read', attempt: readFailures });
          }
          if (cursor.pending.length === 0) continue;
          const due = cursor.since + this.opts.maxWaitMs;
          const full = cursor.full || cursor.pending.length >= this.opts.maxBatchMessages || cursor.pendingBytes >= this.opts.maxBatchBytes;
          if (full || performance.now() >= due) {
            await this.deliver(topicName, cursor, handler);
            delivered = true;
          } else {
            deadline = Math.min(deadline, due);
          }
        }
        if (readFailed) {
          await this.sleep(this.backoff(readFailures++));
          continue;
        }
        readFailures = 0;
        if (!delivered && !this.closed && topic.version === seen) {
          const wait = Math.min(deadline - performance.now(), this.host.pollIntervalMs);
          await this.waitForAppend(topic, wait);
        }
      }
    } finally {
      release();
    }
  }

  private async startCursor(partition: Partition): Promise<PartitionCursor> {
    const { low, high } = await partition.offsets();
    const committed = await this.host.committedOffset(this.opts.group, this.opts.topic, partition.id);
    let fetch = committed ?? low;
    // Start inside the retained range: below it the data is gone (retention), above it the log
    // lost its tail in a crash; either way the closest retained offset is the useful one.
    if (committed !== undefined && (committed < low || committed > high)) {
      fetch = committed < low ? low : high;
      this.host.noteOffsetReset();
    }
    return { partition, fetch, pending: [], pendingBytes: 0, full: false, since: 0 };
  }

  private async fill(c: PartitionCursor): Promise<void> {
    const room = this.opts.maxBatchMessages - c.pending.length;
    if (c.full || room <= 0) return;
    const empty = c.pending.length === 0;
    const r = await c.partition.read(c.fetch, room, this.opts.maxBatchBytes - c.pendingBytes, empty);
    c.fetch = r.next;
    if (r.messages.length > 0) {
      if (empty) c.since = performance.now();
      for (const m of r.messages) {
        c.pending.push(m);
        c.pendingBytes += m.value.length;
      }
    }
    if (r.byteLimited) c.full = true;
  }

  private async deliver(topic: string, c: PartitionCursor, handler: BatchHandler): Promise<void> {
    const messages = c.pending;
    const batch: MessageBatch = {
      topic,
      partition: c.partition.id,
      messages,
      firstOffset: messages[0]!.offset,
      lastOffset: messages[messages.length - 1]!.offset,
    };
    const info = { group: this.opts.group, topic, partition: c.partition.id };
    for (let attempt = 0; ; attempt++) {
      try {
        await handler(batch);
        break;
      } catch (err) {
        this.host.onError(err, { ...info, phase: 'handler', attempt });
        // Not committed: the batch comes back (possibly with other boundaries) on the next run.
        if (this.closed) return;
        await this.sleep(this.backoff(attempt));
        if (this.closed) return;
      }
    }
    // The handler's side effects are done; retry only the commit, never the handler, on failure.
    for (let attempt = 0; ; attempt++) {
      try {
        await this.host.commit(this.opts.group, topic, c.partition.id, batch.lastOffset + 1);
        break;
      } catch (err) {
        this.host.onError(err, { ...info, phase: 'commit', attempt });
        if (this.closed) return;
        await this.sleep(this.backoff(attempt));
        if (this.closed) return;
      }
    }
    c.pending = [];
    c.pendingBytes = 0;
    c.full = false;
  }

  private backoff(attempt: number): number {
    // `attempt` counts failures so far from 0. One process owns the log: no herd, so no jitter.
    return backoffMs(attempt + 1, { initialMs: this.host.retryInitialMs, maxMs: this.host.retryMaxMs, jitter: 'none' });
  }

  private sleep(ms: number): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wakers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      timer.unref();
      this.wakers.add(done);
    });
  }

  /** Sleeps until an in-process append, `ms` (the polling fallback), or close. */
  private waitForAppend(topic: TopicState, ms: number): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        topic.removeWaiter(done);
        this.wakers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      timer.unref();
      topic.addWaiter(done);
      this.wakers.add(done);
    });
  }
}
