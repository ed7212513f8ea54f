import type { IHeaders, KafkaMessage } from 'kafkajs';
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

/** Exponential backoff with full jitter in [min/2, cap]; attempt starts at 1. */
export function backoffMs(attempt: number, min: number, max: number): number {
  const cap = Math.min(max, min * 2 ** Math.min(attempt - 1, 30));
  return Math.round(cap / 2 + (Math.random() * cap) / 2);
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
