import { Partitioners, type ICustomPartitioner, type Kafka, type Message, type Producer, type RecordMetadata } from 'kafkajs';
import { LogUnavailableError, type AppendedRange, type LogMessage, type LogProducer } from '../types.ts';
import { describeError, type BackendLogger } from './logging.ts';
import type { ResolvedOptions } from './options.ts';
import { unavailable, withDeadline } from './util.ts';

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

  private async sendNow(topic: string, messages: LogMessage[]): Promise<AppendedRange[]> {
    const now = Date.now();
    const kafkaMessages: Message[] = messages.map((m) => ({
      key: m.key,
      value: m.value,
      headers: m.headers,
      timestamp: String(m.timestamp ?? now),
    }));
    const generation = this.generation;
    const attempt = (async () => {
      const producer = await this.connected();
      return producer.send({ topic, messages: kafkaMessages, acks: -1, timeout: this.opts.requestTimeoutMs });
    })();
    try {
      const response = await withDeadline(attempt, this.opts.sendTimeoutMs, `send to ${topic}`);
      return rangesFromResponse(response, kafkaMessages, this.assigned);
    } catch (err) {
      // After a failed send kafkajs rolls its sequence numbers back even when the broker may have
      // written the batch; the next batch would then reuse them and the broker would drop it as a
      // duplicate. A fresh producer gets a fresh producer id, so nothing can be silently lost.
      this.retire(generation);
      this.logger.warn('send failed', { topic, messages: messages.length, ...describeError(err) });
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
