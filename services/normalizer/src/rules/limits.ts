import { DEFAULT_TIME_WINDOW, type EntryErrorCode, type NormalizedEntry } from '@ingest/contracts';

/** Per-entry bounds. Byte counts are UTF-8 bytes (Buffer.byteLength), never UTF-16 code units. */
export interface EntryLimits {
  /** The whole normalized entry serialized as JSON. */
  maxEntryBytes: number;
  /** data.message of logs, data.message of health checks, data.summary of alerts. */
  maxMessageBytes: number;
  /** Metric, event, alert and health check names. */
  maxNameBytes: number;
  maxAppBytes: number;
  maxSourceBytes: number;
  maxLabels: number;
  /** All label keys and values together, UTF-8 bytes. */
  maxLabelBytes: number;
  maxLabelKeyBytes: number;
  maxLabelValueBytes: number;
  /** What stays in the output `data` (extra keys, event attributes, conversion provenance), as JSON. */
  maxDataBytes: number;
  /** Nesting of `data`; `data` itself is depth 1. Keeps every walk over it shallow and cheap. */
  maxDataDepth: number;
  /** Oldest accepted event time, relative to receivedAt. */
  maxPastMs: number;
  /** Furthest accepted event time into the future, relative to receivedAt (clock skew). */
  maxFutureMs: number;
}

export const DEFAULT_ENTRY_LIMITS: EntryLimits = Object.freeze({
  maxEntryBytes: 64 * 1024,
  maxMessageBytes: 32 * 1024,
  maxNameBytes: 200,
  maxAppBytes: 128,
  maxSourceBytes: 128,
  maxLabels: 32,
  maxLabelBytes: 16 * 1024,
  maxLabelKeyBytes: 64,
  maxLabelValueBytes: 256,
  maxDataBytes: 16 * 1024,
  maxDataDepth: 16,
  maxPastMs: DEFAULT_TIME_WINDOW.maxPastMs,
  maxFutureMs: DEFAULT_TIME_WINDOW.maxFutureMs,
});

/** The catalog message of INGEST_ERR_ENTRY_ID promises 1 to 128, so this is not a tunable limit. */
export const MAX_ID_LENGTH = 128;

export interface NormalizeContext {
  /** From the verified credential; never from the entry. */
  tenant: string;
  /** When the edge received the batch, UTC epoch ms; the timestamp window is relative to it. */
  receivedAt: number;
  /** Per-tenant overrides; unset (or undefined) keys fall back to DEFAULT_ENTRY_LIMITS. */
  limits?: Partial<EntryLimits>;
}

export type RejectedOutcome = { ok: false; code: EntryErrorCode; message: string };

/** `row`: the entry as the table's JSONEachRow line, what the log stores. */
export type EntryOutcome = { ok: true; entry: NormalizedEntry; row: string } | RejectedOutcome;

/** A type-specific rule: reads the already-validated `data` object and fills the output. */
export type TypeRule = (data: Record<string, unknown>, out: NormalizedEntry, limits: EntryLimits) => RejectedOutcome | undefined;

export function reject(code: EntryErrorCode, message: string): RejectedOutcome {
  return { ok: false, code, message };
}

// Overrides are usually one object per tenant reused for a whole batch, so merging once per object
// (not once per entry) keeps the hot path allocation-free. WeakMap: no growth when configs change.
// The price: an overrides object must not be mutated after first use; swap in a new one instead.
const resolved = new WeakMap<Partial<EntryLimits>, EntryLimits>();

export function resolveLimits(overrides: Partial<EntryLimits> | undefined): EntryLimits {
  if (overrides === undefined) return DEFAULT_ENTRY_LIMITS;
  let limits = resolved.get(overrides);
  if (limits === undefined) {
    const merged: EntryLimits = { ...DEFAULT_ENTRY_LIMITS };
    for (const key of Object.keys(DEFAULT_ENTRY_LIMITS) as (keyof EntryLimits)[]) {
      const value = overrides[key];
      // `{ maxLabels: undefined }` must not erase the default and disable the bound.
      if (typeof value === 'number' && !Number.isNaN(value)) merged[key] = value;
    }
    limits = Object.freeze(merged);
    resolved.set(overrides, limits);
  }
  return limits;
}
