import { CompressionTypes, Partitioners, type ICustomPartitioner, type Kafka, type Message, type Producer, type RecordMetadata } from 'kafkajs';
import { LogRecordTooLargeError, LogUnavailableError, type AppendedRange, type LogMessage, type LogProducer } from '../types.ts';
import { chunkBySize, estimateRecordBytes, isTooLarge, type TopicLimits } from './limits.ts';
import { describeError, type BackendLogger } from './logging.ts';
import type { ResolvedOptions } from './options.ts';
import { unavailable, withDeadline } from './util.ts';

/**
 * Halvings of the request budget one send may go through after MESSAGE_TOO_LARGE. 4 MiB down to a
 * few hundred bytes is 14; past this the broker's answer is not about size and retrying is futile.
 */
const MAX_SPLITS = 16;

/**
 * kafkajs answers a produce with one base offset per partition but does not say which message went
 * where. Its partitioner is handed our exact message objects, so a wrapper around the default
 * (Java-compatible murmur2) partitioner records each choice; that gives the count per partition,
 * and a partition's messages in one produce request are contiguous from its base offset.
 */
function recordingPartitioner(assigned: WeakMap<Message, number>): ICustomPartitioner {
  return () => {
    const inner = Partitioners.DefaultPartitioner();
    return (args) => {
      const partition = inner(args);
      assigned.set(args.message, partition);
      return partition;
    };
  };
}

export function rangesFromResponse(
  response: RecordMetadata[],
  messages: Message[],
  assigned: WeakMap<Message, number>,
): AppendedRange[] {
  const counts = new Map<number, number>();
  for (const m of messages) {
    const p = assigned.get(m);
    if (p === undefined) throw new Error('a message was sent without a recorded partition');
    counts.set(p, (counts.get(p) ?? 0) + 1);
  }
  const ranges: AppendedRange[] = [];
  for (const r of response) {
    const count = counts.get(r.partition);
    if (count === undefined || r.baseOffset === undefined) {
      throw new Error(`unexpected produce response for partition ${r.partition}`);
    }
    const first = Number(r.baseOffset);
    ranges.push({ partition: r.partition, firstOffset: first, lastOffset: first + count - 1 });
    counts.delete(r.partition);
  }
  if (counts.size > 0) throw new Error(`no produce response for partitions ${[...counts.keys()].join(',')}`);
  return ranges.sort((a, b) => a.partition - b.partition);
}

/** Joins runs of one partition that follow each other (a send cut into several produce requests). */
export function mergeRanges(ranges: AppendedRange[]): AppendedRange[] {
  const sorted = [...ranges].sort((a, b) => a.partition - b.partition || a.firstOffset - b.firstOffset);
  const out: AppendedRange[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && last.partition === r.partition && last.lastOffset + 1 === r.firstOffset) last.lastOffset = r.lastOffset;
    else out.push({ ...r });
  }
  return out;
}

export class KafkaLogProducer implements LogProducer {
  private producer: Producer | undefined;
  private connecting: Promise<Producer> | undefined;
  /** Bumped whenever the current kafkajs producer is thrown away; a late connect then retires itself. */
  private generation = 0;
  private readonly assigned = new WeakMap<Message, number>();
  private readonly retiring = new Set<Promise<void>>();
  /** Tail of the send queue: sends run one at a time (see send). */
  private tail: Promise<void> = Promise.resolve();
  private queued = 0;
  private closed = false;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly kafka: Kafka,
    private readonly opts: ResolvedOptions,
    private readonly logger: BackendLogger,
    private readonly limits: TopicLimits,
    private readonly onClosed: () => void,
  ) {}

  async send(topic: string, messages: LogMessage[]): Promise<AppendedRange[]> {
    if (this.closed) throw new LogUnavailableError('kafka: producer is closed');
    if (messages.length === 0) return [];
    // One send at a time: with an idempotent producer a failed send must retire the producer
    // (below) before anything else uses its sequence numbers, and kafkajs#598 saw out-of-order
    // sequence errors under concurrent sends. The queue is bounded; past it callers shed load.
    if (this.queued >= this.opts.maxQueuedSends) {
      throw new LogUnavailableError(`kafka: producer busy (${this.queued} sends queued)`);
    }
    this.queued++;
    const previous = this.tail;
    let release!: () => void;
    this.tail = new Promise<void>((resolve) => {
      release = resolve;
    });
    try {
      await previous;
      if (this.closed) throw new LogUnavailableError('kafka: producer is closed');
      return await this.sendNow(topic, messages);
    } finally {
      this.queued--;
      release();
    }
  }

  /**
   * Cuts the send into produce requests that fit the topic's size limit and sends them in order.
   * If the broker still answers MESSAGE_TOO_LARGE (a limit lowered since we read it, an estimate
   * off), the budget is halved and the rest re-cut; a record too large on its own is refused for
   * good (LogRecordTooLargeError), never retried. Records above the limit are found before
   * anything is sent, so such a send usually writes nothing.
   */
  private async sendNow(topic: string, messages: LogMessage[]): Promise<AppendedRange[]> {
    const deadline = Date.now() + this.opts.sendTimeoutMs;
    const now = Date.now();
    const kafkaMessages: Message[] = messages.map((m) => ({
      key: m.key,
      value: m.value,
      headers: m.headers,
      timestamp: String(m.timestamp ?? now),
    }));
    const sizes = messages.map(estimateRecordBytes);
    const limits = await this.limits.budget(topic);
    const { maxMessageBytes, recordLimit } = limits;
    let budget = limits.budget;
    const oversized = sizes.flatMap((size, i) => (size > recordLimit ? [i] : []));
    if (oversized.length > 0) throw this.tooLarge(topic, oversized, sizes, maxMessageBytes);

    const ranges: AppendedRange[] = [];
    let splits = 0;
    for (let from = 0; from < kafkaMessages.length; ) {
      const [start, end] = chunkBySize(sizes, budget, from, 1)[0] ?? [from, kafkaMessages.length];
      try {
        ranges.push(...(await this.produce(topic, kafkaMessages.slice(start, end), deadline)));
        from = end;
      } catch (err) {
        if (!isTooLarge(err)) throw err;
        let bytes = 0;
        for (let i = start; i < end; i++) bytes += sizes[i] ?? 0;
        if (end - start === 1) throw this.tooLarge(topic, [start], sizes, maxMessageBytes);
        if (++splits > MAX_SPLITS) throw unavailable(`send to ${topic}`, err);
        budget = this.limits.lower(topic, bytes);
        this.logger.warn('produce request over the broker size limit; splitting', { topic, messages: end - start, bytes, nextBudget: budget, splits });
      }
    }
    return mergeRanges(ranges);
  }

  private tooLarge(topic: string, indices: number[], sizes: number[], limit: number): LogRecordTooLargeError {
    const largest = indices.reduce((max, i) => Math.max(max, sizes[i] ?? 0), 0);
    this.logger.warn('records too large for the topic; refused', { topic, records: indices.length, largestBytes: largest, limitBytes: limit });
    return new LogRecordTooLargeError(
      `kafka: ${indices.length} record(s) for ${topic} over the size limit (largest ${largest} bytes, limit ${limit} bytes)`,
      indices,
      largest,
      limit,
    );
  }

  /** One produce request; any failure retires the kafkajs producer (see below). */
  private async produce(topic: string, kafkaMessages: Message[], deadline: number): Promise<AppendedRange[]> {
    const generation = this.generation;
    const remaining = deadline - Date.now();
    if (remaining <= 0) throw new LogUnavailableError(`kafka: send to ${topic}: no answer within ${this.opts.sendTimeoutMs} ms`);
    const attempt = (async () => {
      const producer = await this.connected();
      return producer.send({
        topic,
        messages: kafkaMessages,
        acks: -1,
        timeout: this.opts.requestTimeoutMs,
        compression: this.opts.compression === 'gzip' ? CompressionTypes.GZIP : CompressionTypes.None,
      });
    })();
    try {
      const response = await withDeadline(attempt, remaining, `send to ${topic}`);
      return rangesFromResponse(response, kafkaMessages, this.assigned);
    } catch (err) {
      // After a failed send kafkajs rolls its sequence numbers back even when the broker may have
      // written the batch (one partition of a request can fail while another was written); the
      // next batch would then reuse them and the broker would drop it as a duplicate. A fresh
      // producer gets a fresh producer id, so nothing can be silently lost.
      this.retire(generation);
      if (isTooLarge(err)) throw err;
      this.logger.warn('send failed', { topic, messages: kafkaMessages.length, ...describeError(err) });
      throw unavailable(`send to ${topic}`, err);
    }
  }

  private connected(): Promise<Producer> {
    if (this.producer) return Promise.resolve(this.producer);
    if (this.connecting) return this.connecting;
    const generation = this.generation;
    const producer = this.kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      retry: this.opts.retry,
      createPartitioner: recordingPartitioner(this.assigned),
    });
    const connecting = (async () => {
      try {
        await producer.connect();
      } catch (err) {
        this.retireProducer(producer);
        throw err;
      }
      if (generation !== this.generation || this.closed) {
        this.retireProducer(producer);
        throw new LogUnavailableError('kafka: producer was replaced while connecting');
      }
      this.producer = producer;
      return producer;
    })();
    this.connecting = connecting;
    const clear = (): void => {
      if (this.connecting === connecting) this.connecting = undefined;
    };
    connecting.then(clear, clear);
    return connecting;
  }

  /** Drops the current kafkajs producer (if still the one `generation` used). */
  private retire(generation: number): void {
    if (generation !== this.generation) return;
    this.generation++;
    const producer = this.producer;
    this.producer = undefined;
    this.connecting = undefined;
    if (producer) this.retireProducer(producer);
  }

  private retireProducer(producer: Producer): void {
    const done = producer
      .disconnect()
      .catch((err: unknown) => this.logger.debug('disconnecting a retired producer failed', describeError(err)))
      .finally(() => this.retiring.delete(done));
    this.retiring.add(done);
  }

  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    this.closed = true;
    try {
      // Sends already queued finish (each is bounded by sendTimeoutMs) or fail as closed.
      await withDeadline(this.tail, this.opts.closeTimeoutMs, 'waiting for sends before close').catch(
        (err: unknown) => this.logger.warn('close did not wait for in-flight sends', describeError(err)),
      );
      this.retire(this.generation);
      await withDeadline(Promise.all([...this.retiring]), this.opts.closeTimeoutMs, 'producer disconnect').catch(
        (err: unknown) => this.logger.warn('producer disconnect did not finish', describeError(err)),
      );
    } finally {
      this.onClosed();
    }
  }
}
