import type { EntryErrorCode, WireEntry } from '@ingest/contracts';

/** One item of a protocol body (a line, a record, a data point) that could not become an entry. */
export interface Refusal {
  /** The item's place in the body: the 1-based line for line protocol, the 0-based item otherwise. */
  item: number;
  code: EntryErrorCode;
  message: string;
  /** The item as received (a line, an object), for the dead-letter record. */
  raw?: unknown;
}

/**
 * A decoded protocol body: entries in the native v2 shape, not yet validated (the normalizer
 * validates them like any /v2/ingest entry), and what could not be turned into one.
 */
export interface Decoded {
  entries: WireEntry[];
  /** origins[i] is the item entries[i] came from, so a rejection can name its line or record. */
  origins: number[];
  refusals: Refusal[];
  /** Items left out on purpose, not errors (remote-write staleness markers and NaN samples). */
  skipped: number;
  /** The skipped items by reason, for the skipped-items counter. */
  skippedBy: Record<string, number>;
  /** The body's size once inflated, when the decoder inflated it (snappy); rates and budget count this. */
  bytes?: number;
}

export interface DecodeOptions {
  /** Receive time, UTC epoch ms: the time of items that carry none. */
  now: number;
  /** More entries than this in one body is refused whole (INGEST_ERR_TOO_MANY_ENTRIES). */
  maxEntries: number;
  labelLimits?: LabelLimits;
}

/** The normalizer's label bounds (its DEFAULT_ENTRY_LIMITS): what does not fit is kept in data instead. */
export interface LabelLimits {
  maxLabels: number;
  maxLabelBytes: number;
  maxLabelKeyBytes: number;
  maxLabelValueBytes: number;
}

export const DEFAULT_LABEL_LIMITS: LabelLimits = Object.freeze({ maxLabels: 32, maxLabelBytes: 16 * 1024, maxLabelKeyBytes: 64, maxLabelValueBytes: 256 });

export function emptyDecoded(): Decoded {
  return { entries: [], origins: [], refusals: [], skipped: 0, skippedBy: {} };
}
