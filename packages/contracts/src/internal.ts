import type { IngestResult } from './entry.ts';
import type { EntryErrorCode } from './errors.ts';

/** Internal routes between the services. Not public API; versioned with the services. */
export const ROUTES = {
  normalize: '/internal/v2/normalize',
  write: '/internal/v2/write',
  /** Edge → sink writer: a tenant's read (GET /v2/query); the sink writer owns the store. */
  query: '/internal/v2/query',
} as const;

/** Headers that travel edge → normalizer → sink writer → log. */
export const HEADERS = {
  tenant: 'x-ingest-tenant',
  version: 'x-ingest-version',
  traceparent: 'traceparent',
  /** On the normalizer → sink writer hop over HTTP: how many of the body's lines are rows (the rest are dead letters). */
  rows: 'x-ingest-rows',
  /** Shared secret between our own services (and ingestctl) for /internal and /admin routes. */
  internalToken: 'x-ingest-internal-token',
  /** On a GET /v2/query answer: the cursor of the next page (also `next` in a JSON body); absent on the last page. */
  nextCursor: 'ingest-next-cursor',
} as const;

/**
 * Ingest versions the edge stamps on a request. A mirror copy (cutover mirror mode) travels the v2
 * path but is written to the mirror topic and table only, never live.
 */
export const INGEST_VERSIONS = { live: 'v2', mirror: 'v2-mirror' } as const;

/** Edge → normalizer. `entries` are as parsed from the producer's body, not yet trusted. */
export interface NormalizeRequest {
  tenant: string;
  receivedAt: number;
  /**
   * Handed over: the normalizer empties each slot once it has encoded the entry, so a request
   * waiting for the log holds rows, not the parsed objects. The caller does not read it afterwards.
   */
  entries: unknown[];
  /** The decompressed body size, what the request holds of each in-flight budget. */
  bytes: number;
  /** The body held a number that may have parsed to ±Infinity: a serializer must keep it (see jsonKeepingInfinity). */
  mayHoldInfinity?: boolean;
  /**
   * Items of a protocol body the edge could not turn into entries at all (a line that does not
   * parse, a NaN sample): the normalizer counts and dead-letters them with the entries it refuses.
   * `index` is the item's place in the protocol body (its line, for line protocol).
   */
  refused?: RefusedItem[];
  /** For protocol bodies: the item (line, record, sample) each entry came from; dead letters carry it as their index. */
  origins?: number[];
}

export interface RefusedItem {
  index: number;
  code: EntryErrorCode;
  message: string;
  raw: unknown;
}

/**
 * Normalizer → sink writer: the bytes to append, made once by the normalizer. `rows` are the
 * table's rows as JSONCompactEachRow lines (no newline, see storage rows.ts), one log message each; `deadLetters` are
 * DeadLetter JSON documents for the dead-letter topic. Nothing downstream parses either.
 */
export interface WriteBatch {
  tenant: string;
  rows: Buffer[];
  /** Sum of the rows' byte lengths. */
  rowBytes: number;
  deadLetters: Buffer[];
}

export interface WriteResult {
  accepted: number;
  deadLettered: number;
}

/** What travels beside a hop's payload: who it is for, which ingest version, the trace context. */
export interface HopMeta {
  tenant: string;
  version: string;
  /** W3C trace context headers (traceparent, tracestate) of the caller's span, if any. */
  trace: Record<string, string>;
}

/**
 * A stage as seen by the one upstream of it. In one process it is the stage itself, called
 * directly; across processes it is an HTTP client of the stage's internal route. Both keep the
 * same contract: an IngestError with its catalog code and Retry-After when the stage sheds,
 * INGEST_ERR_DEPENDENCY_UNAVAILABLE when it cannot be reached or fails unexpectedly.
 */
export interface NormalizeHop {
  normalize(request: NormalizeRequest, meta: HopMeta): Promise<IngestResult>;
}

export interface WriteHop {
  write(batch: WriteBatch, meta: HopMeta): Promise<WriteResult>;
}

/**
 * Edge → sink writer: one page of a tenant's entries. `search` is the client's query string as it
 * came (parsed and validated once, by the sink writer's query parser); the tenant travels in the
 * hop's meta, taken from the API key, so nothing in `search` can name another tenant.
 */
export interface QueryRequest {
  search: string;
}

/** An entry as read back: the stored row, type-specific fields only where they apply. */
export interface StoredEntry {
  id: string;
  type: string;
  timestamp: string;
  receivedAt: string;
  app: string;
  source: string;
  labels: Record<string, string>;
  level?: string;
  message?: string;
  name?: string;
  value?: number | null;
  unit?: string;
  data: unknown;
}

export interface QueryPage {
  entries: StoredEntry[];
  /** Opaque: pass as `cursor` for the next page; null on the last page. */
  next: string | null;
}

/** One minute (or hour) of a tenant's entries by type, app and level, as `FINAL` counts them. */
export interface CountBucket {
  time: string;
  type: string;
  app: string;
  level: string;
  count: number;
}

/** One minute (or hour) of one metric series (name, label set, app): its points' count, sum, min, max. */
export interface MetricBucket {
  time: string;
  name: string;
  app: string;
  labels: Record<string, string>;
  count: number;
  sum: number;
  min: number;
  max: number;
}

/** GET /v2/query?rollup=1m|1h: every bucket of the window, never a partial list (too many is a 400). */
export interface RollupPage {
  rollup: '1m' | '1h';
  counts: CountBucket[];
  metrics: MetricBucket[];
  next: null;
}

export interface QueryHop {
  query(request: QueryRequest, meta: HopMeta): Promise<QueryPage | RollupPage>;
}
