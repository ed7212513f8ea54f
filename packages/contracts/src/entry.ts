/** The entry types of the wire v2 schema. */
export const ENTRY_TYPES = ['log', 'metric', 'event', 'health', 'alert'] as const;
export type EntryType = (typeof ENTRY_TYPES)[number];

/** The wire v2 entry as a producer sends it (what the protocol decoders produce), before validation. */
export interface WireEntry {
  id?: string;
  type: EntryType;
  /** ISO 8601 string or epoch milliseconds. */
  timestamp: string | number;
  app?: string;
  source?: string;
  data: Record<string, unknown>;
  labels?: Record<string, string>;
}

/**
 * An entry after the normalizer: validated, in canonical units (seconds, bytes, ratios, UTC ms),
 * with an id. Flat columns carry what is queried often; `data` keeps the rest of the payload.
 */
export interface NormalizedEntry {
  id: string;
  tenant: string;
  type: EntryType;
  /** Event time, UTC epoch milliseconds. */
  ts: number;
  /** When the edge received it, UTC epoch milliseconds. */
  receivedAt: number;
  app: string;
  source: string;
  labels: Record<string, string>;
  /** metric name, event name, alert name or health check name; '' for logs. */
  name: string;
  /** metric value in its canonical unit; null otherwise. */
  value: number | null;
  /** canonical unit of `value` ('' when unitless). */
  unit: string;
  /** log level, health status or alert severity; '' for metrics and events. */
  level: string;
  /** log message, alert summary, health detail; '' otherwise. */
  message: string;
  /** remaining type-specific fields, canonicalized. */
  data: Record<string, unknown>;
}

/**
 * The accepted event-time window, relative to when the entry was received: the normalizer's default
 * (a tenant may have its own), and what the agent checks before it answers a producer.
 */
export const DEFAULT_TIME_WINDOW = Object.freeze({ maxPastMs: 7 * 24 * 60 * 60 * 1000, maxFutureMs: 10 * 60 * 1000 });

/** One rejected entry in a partial-success response. */
export interface EntryRejection {
  index: number;
  code: string;
  message: string;
}

/** A rejected entry as written to the dead-letter topic. */
export interface DeadLetter {
  tenant: string;
  index: number;
  code: string;
  message: string;
  receivedAt: number;
  /** The entry as received (JSON), truncated to a bound so a dead letter cannot be huge. */
  raw: string;
}

/** Answer of POST /v2/ingest (and the internal hops) when the batch was taken. */
export interface IngestResult {
  accepted: number;
  rejected: EntryRejection[];
}
