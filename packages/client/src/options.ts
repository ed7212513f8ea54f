import type { Transport } from './transport.ts';
import { IngestClientError } from './errors.ts';
import type { ClientErrorInfo } from './stats.ts';
import { recordSize } from './wal/format.ts';
import type { FsyncPolicy } from './wal/wal.ts';

export type FullPolicy = 'block' | 'dropOldest' | 'rejectNew';

export interface IngestClientOptions {
  /** Directory of the write-ahead log. One client per directory (a LOCK file enforces it). */
  walDir: string;
  /** Base URL of the edge; entries go to `${endpoint}/v2/ingest`. Not needed with `transport`. */
  endpoint?: string;
  /** The tenant's API key, sent as `Authorization: Bearer <key>`. Not needed with `transport`. */
  apiKey?: string;
  /** Replaces the HTTP transport (tests, other protocols). The client closes it on close(). */
  transport?: Transport;
  /** Default `app` for emitMetric when none is given. */
  app?: string;

  /** In-memory buffer in front of the WAL: entries (default 50,000). */
  maxBufferEntries?: number;
  /** In-memory buffer: bytes as they will be written to the WAL (default 16 MiB). */
  maxBufferBytes?: number;
  /** The buffer is written to the WAL at least this often (default 500 ms). */
  flushIntervalMs?: number;
  /** Entries per WAL write and per request to the edge (default 500). */
  maxBatchSize?: number;
  /** Uncompressed payload bytes per request (default 1 MiB); a single larger entry goes alone. */
  maxBatchBytes?: number;
  /** A serialized entry larger than this is refused by record() (default 256 KiB). */
  maxEntryBytes?: number;

  /** Segment file size (default 16 MiB). */
  segmentBytes?: number;
  /** Disk budget for undelivered entries, counted in whole segments (default 256 MiB). */
  maxDiskBytes?: number;
  /** When WAL writes reach the disk (default 'perBatch'); see README. */
  fsync?: FsyncPolicy;
  /** fsync cadence for fsync: 'interval' (default 1000 ms). */
  fsyncIntervalMs?: number;
  /** What happens when the disk budget is used up (default 'dropOldest'); see README. */
  fullPolicy?: FullPolicy;

  /** Requests to the edge at once (default 4). */
  maxInFlight?: number;
  /** Retries of one batch before its entries count as failed; -1 retries forever (default). */
  maxRetries?: number;
  /** First backoff step (default 100 ms); doubles per consecutive failure, equal jitter. */
  backoffBaseMs?: number;
  /** Backoff ceiling (default 30 s). */
  backoffMaxMs?: number;
  /** A Retry-After beyond this is clamped, so one bad header cannot park the client (default 5 min). */
  maxRetryAfterMs?: number;
  /** Per-request timeout (default 30 s). */
  requestTimeoutMs?: number;
  /**
   * 401/403 keep the data and retry with backoff (default true): a revoked or mistyped key is fixed
   * by an operator, and dropping everything meanwhile would turn a config slip into data loss.
   */
  holdOnAuthError?: boolean;
  /** The acknowledged offset is persisted at most this often (default 200 ms). */
  checkpointIntervalMs?: number;
  /** Called for background errors (delivery failures, WAL write errors); never throws into us. */
  onError?: (err: ClientErrorInfo) => void;
}

/** The options with every default filled in, checked by validateOptions(). */
type Required2<T> = { [K in keyof T]-?: T[K] };
export type Settings = Required2<Omit<IngestClientOptions, 'endpoint' | 'apiKey' | 'transport' | 'app' | 'onError'>>;

const DEFAULTS: Omit<Settings, 'walDir'> = {
  maxBufferEntries: 50_000,
  maxBufferBytes: 16 * 1024 * 1024,
  flushIntervalMs: 500,
  maxBatchSize: 500,
  maxBatchBytes: 1024 * 1024,
  maxEntryBytes: 256 * 1024,
  segmentBytes: 16 * 1024 * 1024,
  maxDiskBytes: 256 * 1024 * 1024,
  fsync: 'perBatch',
  fsyncIntervalMs: 1000,
  fullPolicy: 'dropOldest',
  maxInFlight: 4,
  maxRetries: -1,
  backoffBaseMs: 100,
  backoffMaxMs: 30_000,
  maxRetryAfterMs: 300_000,
  requestTimeoutMs: 30_000,
  holdOnAuthError: true,
  checkpointIntervalMs: 200,
};

/** Fills in defaults and refuses values out of range (CLIENT_ERR_CONFIG), naming the option. */
export function validateOptions(o: IngestClientOptions): Settings {
  const s: Settings = { ...DEFAULTS, walDir: o.walDir };
  for (const k of Object.keys(DEFAULTS) as Array<keyof typeof DEFAULTS>) {
    const v = o[k];
    if (v !== undefined) (s as unknown as Record<string, unknown>)[k] = v;
  }
  const bad = (why: string): never => {
    throw new IngestClientError('CLIENT_ERR_CONFIG', [why]);
  };
  if (typeof s.walDir !== 'string' || s.walDir === '') bad('walDir is required');
  const positive: Array<keyof Settings> = ['maxBufferEntries', 'maxBufferBytes', 'flushIntervalMs', 'maxBatchSize', 'maxBatchBytes', 'maxEntryBytes', 'segmentBytes', 'maxDiskBytes', 'fsyncIntervalMs', 'maxInFlight', 'backoffBaseMs', 'backoffMaxMs', 'maxRetryAfterMs', 'requestTimeoutMs', 'checkpointIntervalMs'];
  for (const k of positive) {
    const v = s[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) bad(`${k} must be a positive integer, got ${String(v)}`);
  }
  if (!Number.isInteger(s.maxRetries) || s.maxRetries < -1) bad('maxRetries must be -1 (forever) or a non-negative integer');
  if (!['always', 'perBatch', 'interval'].includes(s.fsync)) bad(`fsync must be always, perBatch or interval, got ${s.fsync}`);
  if (!['block', 'dropOldest', 'rejectNew'].includes(s.fullPolicy)) bad(`fullPolicy must be block, dropOldest or rejectNew, got ${s.fullPolicy}`);
  if (s.maxDiskBytes < 2 * s.segmentBytes) bad(`maxDiskBytes (${s.maxDiskBytes}) must be at least two segments (${2 * s.segmentBytes})`);
  if (recordSize(s.maxEntryBytes) * 2 > s.segmentBytes) bad(`maxEntryBytes (${s.maxEntryBytes}) must fit twice in a segment (${s.segmentBytes})`);
  if (s.maxBufferBytes < recordSize(s.maxEntryBytes)) bad('maxBufferBytes must hold at least one entry of maxEntryBytes');
  if (s.maxBatchBytes * 2 > s.maxDiskBytes) bad(`maxBatchBytes (${s.maxBatchBytes}) must be at most half of maxDiskBytes`);
  return s;
}
