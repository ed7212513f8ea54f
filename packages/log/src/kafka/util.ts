import type { IHeaders, KafkaMessage } from 'kafkajs';
import { backoffMs } from '@ingest/queue';
import { LogUnavailableError, type StoredMessage } from '../types.ts';

/** Wraps any kafkajs failure so callers see one error type (and can map it to a 503). */
export function unavailable(what: string, err: unknown): LogUnavailableError {
  if (err instanceof LogUnavailableError) return err;
  const detail = err instanceof Error ? err.message : String(err);
  return new LogUnavailableError(`kafka: ${what}: ${detail}`, { cause: err });
}

/**
 * Resolves or rejects like `work`, but rejects with LogUnavailableError after `ms`. `work` keeps
 * running (kafkajs has no cancellation), so its eventual rejection is swallowed here rather than
 * left to surface as an unhandled rejection (kafkajs#1686).
 */
export function withDeadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new LogUnavailableError(`kafka: ${what}: no answer within ${ms} ms`));
    }, ms);
    timer.unref();
    work.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

/** Waits `ms`, or less if `signal` aborts first. Never rejects. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) {
      resolve();
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    timer.unref();
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export function headersToRecord(headers: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!headers) return out;
  for (const [name, raw] of Object.entries(headers)) {
    if (raw === undefined) continue;
    // A repeated header arrives as an array; like Java's Headers.lastHeader, the last one wins.
    const value = Array.isArray(raw) ? raw[raw.length - 1] : raw;
    if (value === undefined) continue;
    out[name] = typeof value === 'string' ? value : value.toString('utf8');
  }
  return out;
}

export function toStoredMessage(topic: string, partition: number, m: KafkaMessage): StoredMessage {
  return {
    topic,
    partition,
    offset: Number(m.offset),
    key: m.key ? m.key.toString('utf8') : '',
    value: m.value ?? Buffer.alloc(0),
    headers: headersToRecord(m.headers),
    timestamp: Number(m.timestamp),
  };
}

/** Metadata answers that only mean "the topic is still being created": retrying soon succeeds. */
const TOPIC_NOT_READY = new Set(['UNKNOWN_TOPIC_OR_PARTITION', 'LEADER_NOT_AVAILABLE', 'NOT_LEADER_FOR_PARTITION']);

/** True when `err` (or anything it wraps) says a topic is not ready yet, not that it is missing for good. */
export function isTopicNotReady(err: unknown, types: ReadonlySet<string> = TOPIC_NOT_READY): boolean {
  for (let e: unknown = err, depth = 0; e !== null && typeof e === 'object' && depth < 8; depth++) {
    const { type, cause, originalError, name } = e as { type?: unknown; cause?: unknown; originalError?: unknown; name?: unknown };
    if (typeof type === 'string' && types.has(type)) return true;
    // kafkajs' createTopics({ waitForLeaders }) gives up with this when leaders take long to elect.
    if (name === 'KafkaJSTimeout' && /topic leaders/i.test((e as Error).message)) return true;
    e = cause ?? originalError;
  }
  return false;
}

/** A partition between leaders (an election, a broker restarting): the topic exists, retry. */
export const LEADER_MOVING: ReadonlySet<string> = new Set(['LEADER_NOT_AVAILABLE', 'NOT_LEADER_FOR_PARTITION']);

export interface TopicRetryOptions {
  /** Attempts in all, the first included. */
  attempts: number;
  /** Which failures are retried; default: the topic not ready yet (isTopicNotReady). */
  retryable?: (err: unknown) => boolean;
  minMs: number;
  maxMs: number;
  /** Told before each wait. */
  onRetry?: (attempt: number, waitMs: number, err: unknown) => void;
}

/**
 * Runs `fn`, retrying with bounded exponential backoff while the topic is not ready (right after
 * createTopics the metadata of a loaded broker can lag the creation). Any other error, or the last
 * attempt's, is thrown as is.
 */
export async function retryWhileTopicNotReady<T>(fn: () => Promise<T>, opts: TopicRetryOptions): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt >= opts.attempts || !(opts.retryable ?? isTopicNotReady)(err)) throw err;
      const wait = backoffMs(attempt, { initialMs: opts.minMs, maxMs: opts.maxMs });
      opts.onRetry?.(attempt, wait, err);
      await sleep(wait);
    }
  }
}
