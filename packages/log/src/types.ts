/**
 * The durable log between the sink writer's producer side and the ClickHouse loader.
 * Two implementations: `embedded/` (the project's own segmented on-disk log) and `kafka/` (kafkajs).
 * Everything above this interface is identical in both deployments.
 */

export interface LogMessage {
  /** Partitioning key (the tenant id for telemetry). */
  key: string;
  value: Buffer;
  headers?: Record<string, string>;
  /** Producer timestamp, epoch ms; defaults to now. */
  timestamp?: number;
}

export interface StoredMessage {
  topic: string;
  partition: number;
  offset: number;
  key: string;
  value: Buffer;
  headers: Record<string, string>;
  timestamp: number;
}

/**
 * Per partition, where the appended messages landed (inclusive offsets). A send that had to be cut
 * into several produce requests may report more than one run for a partition (another writer's
 * records can sit between them).
 */
export interface AppendedRange {
  partition: number;
  firstOffset: number;
  lastOffset: number;
}

/** Retained offsets of one partition: messages live at [low, high). `high` is the next offset. */
export interface PartitionOffsets {
  partition: number;
  low: number;
  high: number;
}

/** A run of consecutive messages from one partition, handed to a consumer handler. */
export interface MessageBatch {
  topic: string;
  partition: number;
  messages: StoredMessage[];
  /** Offset of the first and last message (inclusive). */
  firstOffset: number;
  lastOffset: number;
}

export interface LogProducer {
  /**
   * Appends messages durably (embedded: fsync'd per policy; Kafka: acks=all, idempotent) and resolves
   * only then. Rejects with a LogUnavailableError if the log cannot take them; nothing is then
   * reported as written, though some messages may be (at-least-once: the caller retries, dedup is
   * downstream on entry id).
   */
  send(topic: string, messages: LogMessage[]): Promise<AppendedRange[]>;
  close(): Promise<void>;
}

export interface ConsumerOptions {
  group: string;
  topic: string;
  /** Upper bound on messages per handler call. */
  maxBatchMessages: number;
  /** Upper bound on value bytes per handler call. */
  maxBatchBytes: number;
  /** How long to wait for more messages before handing over a smaller batch (ms). */
  maxWaitMs: number;
}

/**
 * Calls the handler with batches in offset order per partition. The group's offset for a partition
 * advances past a batch only after its handler resolved; a handler that throws is retried with the
 * same batch boundaries where the implementation can (so a dedup token derived from the range is
 * stable), after a backoff.
 */
export type BatchHandler = (batch: MessageBatch) => Promise<void>;

export interface LogConsumer {
  run(handler: BatchHandler): Promise<void>;
  /** Stops after the in-flight batch; offsets of finished batches are committed. Idempotent. */
  close(): Promise<void>;
}

export interface LogAdmin {
  /** Creates topics that don't exist yet (partitions used only at creation). */
  ensureTopic(topic: string, partitions: number): Promise<void>;
  partitions(topic: string): Promise<PartitionOffsets[]>;
  /** Committed offset (the next one to read) per partition for a group; -1 when none. */
  committed(group: string, topic: string): Promise<Array<{ partition: number; offset: number }>>;
  /** Reads up to maxMessages starting at `offset` in one partition, without touching any group. */
  read(topic: string, partition: number, offset: number, maxMessages: number): Promise<StoredMessage[]>;
  close(): Promise<void>;
}

/** Whether appends work right now; a service that cannot append is not ready. */
export interface LogHealth {
  ok: boolean;
  /** Each part of the log that refuses appends, and why (empty when ok). */
  failing: Array<{ topic: string; partition: number; error: string; since: number }>;
}

/** Everything a service needs from a log backend. */
export interface DurableLog {
  readonly kind: 'embedded' | 'kafka';
  /** Backends that can tell (the embedded log) report failed appends here until they recover. */
  health?(): LogHealth;
  producer(): LogProducer;
  consumer(opts: ConsumerOptions): LogConsumer;
  admin(): LogAdmin;
  /** Closes every producer, consumer and admin handed out. Idempotent. */
  close(): Promise<void>;
}

export class LogUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LogUnavailableError';
  }
}

/**
 * Some records can never be appended as they are: each on its own is over the log's per-request
 * limit (Kafka: the topic's `max.message.bytes`). Retrying cannot help, so this is not a
 * LogUnavailableError. `indices` point into the `messages` of the failed `send`; records of that
 * send not listed may or may not have been appended (a caller re-sends them; dedup is downstream).
 */
export class LogRecordTooLargeError extends Error {
  constructor(
    message: string,
    readonly indices: readonly number[],
    /** The largest record's estimated size and the limit it was measured against (bytes). */
    readonly recordBytes: number,
    readonly limitBytes: number,
  ) {
    super(message);
    this.name = 'LogRecordTooLargeError';
  }
}
