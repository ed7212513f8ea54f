import type { RetryOptions } from 'kafkajs';
import { stderrSink, type KafkaLogLevel, type LogSink } from './logging.ts';

export type KafkaCompression = 'gzip' | 'none';

export interface KafkaLogOptions {
  brokers: string[];
  clientId: string;
  /** TCP connect timeout per broker (ms). Default 3000. */
  connectionTimeoutMs?: number;
  /** Per-request timeout (ms). Default 15000. */
  requestTimeoutMs?: number;
  /** Retries per kafkajs operation. Bounded on purpose (kafkajs#1324 retry storms). Default 3. */
  retries?: number;
  /** Upper bound on one `send`, connect and retries included (ms). Default 20000. */
  sendTimeoutMs?: number;
  /** Sends queued behind the one in flight before `send` fails fast. Default 64. */
  maxQueuedSends?: number;
  /** Consumer group session timeout (ms). Default 30000. */
  sessionTimeoutMs?: number;
  /** Consumer heartbeat interval (ms), also while a handler runs. Default 3000. */
  heartbeatIntervalMs?: number;
  /** Backoff between retries of a failing batch handler (ms). Default 200 … 10000. */
  handlerBackoffMs?: { min: number; max: number };
  /** Upper bound on one `admin().read` (ms). Default 30000. */
  readTimeoutMs?: number;
  /** Prefix of the throwaway consumer groups `read` uses. Default `ingest-read`. */
  readGroupPrefix?: string;
  /** How long `close` waits for in-flight work before giving up on it (ms). Default 30000. */
  closeTimeoutMs?: number;
  /** Replication factor for topics `ensureTopic` creates (and checks). Default: the broker's default. */
  replicationFactor?: number;
  /** `min.insync.replicas` set on topics `ensureTopic` creates (and checked). Default: the broker's. */
  minInsyncReplicas?: number;
  /** `retention.ms` set on topics `ensureTopic` creates (and checked); -1 keeps for ever. Default: the broker's. */
  retentionMs?: number;
  /** Produce compression; kafkajs has only gzip built in. Default `gzip`. */
  compression?: KafkaCompression;
  /** Attempts while a topic just created is not visible yet (UNKNOWN_TOPIC_OR_PARTITION). Default 10. */
  topicReadyAttempts?: number;
  /** Default `warn`. */
  logLevel?: KafkaLogLevel;
  /** Where structured log records go. Default: JSON lines on stderr. */
  log?: LogSink;
}

export interface ResolvedOptions {
  brokers: string[];
  clientId: string;
  connectionTimeoutMs: number;
  requestTimeoutMs: number;
  retry: RetryOptions;
  sendTimeoutMs: number;
  maxQueuedSends: number;
  sessionTimeoutMs: number;
  heartbeatIntervalMs: number;
  handlerBackoffMs: { min: number; max: number };
  readTimeoutMs: number;
  readGroupPrefix: string;
  closeTimeoutMs: number;
  replicationFactor: number | undefined;
  minInsyncReplicas: number | undefined;
  retentionMs: number | undefined;
  compression: KafkaCompression;
  topicReadyAttempts: number;
  logLevel: KafkaLogLevel;
  log: LogSink;
}

export function resolveOptions(opts: KafkaLogOptions): ResolvedOptions {
  if (opts.brokers.length === 0) throw new TypeError('createKafkaLog: brokers must not be empty');
  if (!opts.clientId) throw new TypeError('createKafkaLog: clientId is required');
  return {
    brokers: [...opts.brokers],
    clientId: opts.clientId,
    connectionTimeoutMs: opts.connectionTimeoutMs ?? 3_000,
    requestTimeoutMs: opts.requestTimeoutMs ?? 15_000,
    // Short and few: kafkajs nests retriers (a send retries, and each retry reconnects with its own
    // retrier), so the total grows with the product. maxRetryTime keeps each wait short.
    retry: { retries: opts.retries ?? 3, initialRetryTime: 100, maxRetryTime: 1_000 },
    sendTimeoutMs: opts.sendTimeoutMs ?? 20_000,
    maxQueuedSends: opts.maxQueuedSends ?? 64,
    sessionTimeoutMs: opts.sessionTimeoutMs ?? 30_000,
    heartbeatIntervalMs: opts.heartbeatIntervalMs ?? 3_000,
    handlerBackoffMs: opts.handlerBackoffMs ?? { min: 200, max: 10_000 },
    readTimeoutMs: opts.readTimeoutMs ?? 30_000,
    readGroupPrefix: opts.readGroupPrefix ?? 'ingest-read',
    closeTimeoutMs: opts.closeTimeoutMs ?? 30_000,
    replicationFactor: opts.replicationFactor,
    minInsyncReplicas: opts.minInsyncReplicas,
    retentionMs: opts.retentionMs,
    compression: opts.compression ?? 'gzip',
    topicReadyAttempts: opts.topicReadyAttempts ?? 10,
    logLevel: opts.logLevel ?? 'warn',
    log: opts.log ?? stderrSink,
  };
}
