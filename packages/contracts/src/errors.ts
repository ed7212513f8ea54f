/**
 * The one error catalog. Every code a client or operator can see is here, with its HTTP status,
 * whether a retry can succeed, and the runbook text (runbooks/errors.md is checked against it).
 * Codes are stable: rename nothing, only add.
 */
export interface CatalogEntry {
  readonly status: number;
  readonly retryable: boolean;
  /** Message template; `%s` placeholders are filled by the thrower. */
  readonly message: string;
  /** Where it is raised: request-level or per-entry (inside a 200 partial result). */
  readonly scope: 'request' | 'entry';
}

export const ERROR_CATALOG = {
  INGEST_ERR_UNAUTHENTICATED: { status: 401, retryable: false, scope: 'request', message: 'missing API key: send "Authorization: Bearer <api key>"' },
  INGEST_ERR_INTERNAL_UNAUTHENTICATED: { status: 401, retryable: false, scope: 'request', message: 'internal and admin routes need the x-ingest-internal-token header (INGEST_INTERNAL_TOKEN)' },
  INGEST_ERR_INVALID_API_KEY: { status: 401, retryable: false, scope: 'request', message: 'the API key is unknown or revoked; create one with `ingestctl tenants add`' },
  INGEST_ERR_UNSUPPORTED_MEDIA_TYPE: { status: 415, retryable: false, scope: 'request', message: 'content type %s is not accepted; send application/json or application/x-ndjson' },
  INGEST_ERR_UNSUPPORTED_ENCODING: { status: 415, retryable: false, scope: 'request', message: 'content encoding %s is not accepted; send gzip, zstd or identity' },
  INGEST_ERR_BODY_TOO_LARGE: { status: 413, retryable: false, scope: 'request', message: 'the body is larger than %s bytes after decompression; split it into smaller batches' },
  INGEST_ERR_TOO_MANY_ENTRIES: { status: 413, retryable: false, scope: 'request', message: 'the batch has more than %s entries; split it into smaller batches' },
  INGEST_ERR_DECOMPRESSION_FAILED: { status: 400, retryable: false, scope: 'request', message: 'the body could not be decompressed as %s: %s' },
  INGEST_ERR_INVALID_UTF8: { status: 400, retryable: false, scope: 'request', message: 'the body is not valid UTF-8' },
  INGEST_ERR_INVALID_JSON: { status: 400, retryable: false, scope: 'request', message: 'the body is not valid JSON: %s' },
  INGEST_ERR_FORBIDDEN_KEY: { status: 400, retryable: false, scope: 'request', message: 'the body uses the forbidden key "%s"' },
  INGEST_ERR_NESTING_TOO_DEEP: { status: 400, retryable: false, scope: 'request', message: 'the body nests deeper than %s levels' },
  INGEST_ERR_INVALID_BODY: { status: 400, retryable: false, scope: 'request', message: 'the body must be a JSON array of entries, an object {"entries": [...]}, or NDJSON: %s' },
  INGEST_ERR_EMPTY_BATCH: { status: 400, retryable: false, scope: 'request', message: 'the batch holds no entries' },
  INGEST_ERR_TENANT_REQUEST_RATE: { status: 429, retryable: true, scope: 'request', message: 'tenant %s is over its request rate; retry after %s s' },
  INGEST_ERR_TENANT_ENTRY_RATE: { status: 429, retryable: true, scope: 'request', message: 'tenant %s is over its entry rate of %s entries/s; retry after %s s' },
  INGEST_ERR_TENANT_BYTE_RATE: { status: 429, retryable: true, scope: 'request', message: 'tenant %s is over its byte rate of %s bytes/s; retry after %s s' },
  INGEST_ERR_NORMALIZER_OVERLOADED: { status: 429, retryable: true, scope: 'request', message: 'the normalizer is over its budget; retry after %s s' },
  INGEST_ERR_SINK_OVERLOADED: { status: 429, retryable: true, scope: 'request', message: 'the sink writer is over its budget; retry after %s s' },
  INGEST_ERR_EDGE_OVERLOADED: { status: 503, retryable: true, scope: 'request', message: 'the edge is over its in-flight budget; retry after %s s' },
  INGEST_ERR_DEPENDENCY_UNAVAILABLE: { status: 503, retryable: true, scope: 'request', message: 'a downstream service (%s) is unavailable; retry after %s s' },
  INGEST_ERR_LOG_UNAVAILABLE: { status: 503, retryable: true, scope: 'request', message: 'the durable log is unavailable: %s' },
  INGEST_ERR_LOG_RECORD_TOO_LARGE: { status: 413, retryable: false, scope: 'request', message: 'an entry is %s bytes as a log record, over the log limit of %s bytes (the topic\'s max.message.bytes); a retry cannot succeed: shrink the entry' },
  INGEST_ERR_SHUTTING_DOWN: { status: 503, retryable: true, scope: 'request', message: 'the service is shutting down; retry against another replica' },
  INGEST_ERR_NOT_FOUND: { status: 404, retryable: false, scope: 'request', message: 'no route %s' },
  INGEST_ERR_INTERNAL: { status: 500, retryable: true, scope: 'request', message: 'internal error: %s' },
  INGEST_ERR_SQL_FAILED: { status: 400, retryable: false, scope: 'request', message: 'the statement failed: %s' },
  INGEST_ERR_NO_VALID_ENTRIES: { status: 400, retryable: false, scope: 'request', message: 'no entry of the request was accepted (%s refused); each entry\'s reason is in "rejected"' },
  INGEST_ERR_INVALID_PROTOBUF: { status: 400, retryable: false, scope: 'request', message: 'the body is not a valid %s protobuf message: %s' },
  INGEST_ERR_INVALID_SNAPPY: { status: 400, retryable: false, scope: 'request', message: 'the body is not snappy block-compressed data (%s); Loki and remote-write protobuf bodies must be snappy-compressed' },
  INGEST_ERR_PARTIAL_WRITE: { status: 400, retryable: false, scope: 'request', message: '%s stored, %s' },
  INGEST_ERR_INVALID_PARAMETER: { status: 400, retryable: false, scope: 'request', message: 'query parameter %s is not valid: %s' },
  INGEST_ERR_SIGNAL_NOT_SUPPORTED: { status: 404, retryable: false, scope: 'request', message: 'OTLP %s are not accepted yet (not an entry type); send logs to /v1/logs and metrics to /v1/metrics' },
  INGEST_ERR_QUERY_TIMEOUT: { status: 422, retryable: false, scope: 'request', message: 'the query ran longer than its bound of %s s; narrow it (a shorter from/to window, type, app or label filters)' },
  INGEST_ERR_QUERY_TOO_MANY_ROWS: { status: 422, retryable: false, scope: 'request', message: 'the query would read more than %s stored rows; narrow it (a shorter from/to window, type, app or label filters)' },
  INGEST_ERR_QUERY_MEMORY: { status: 422, retryable: false, scope: 'request', message: 'the query needs more than its memory bound of %s bytes; narrow it or lower limit' },
  INGEST_ERR_ROLLUP_TOO_MANY_BUCKETS: { status: 422, retryable: false, scope: 'request', message: 'more than %s rollup buckets match; narrow from/to, filter by type, app or name, use rollup=1h, or raise limit (at most 10000)' },
  INGEST_ERR_QUERY_RATE: { status: 429, retryable: true, scope: 'request', message: 'tenant %s is over its query rate of %s queries/s (separate from its ingest rate); retry after %s s' },
  INGEST_ERR_SQL_REFUSED: { status: 403, retryable: false, scope: 'request', message: 'ingestctl sql runs read-only statements only: %s' },

  INGEST_ERR_ENTRY_NOT_OBJECT: { status: 400, retryable: false, scope: 'entry', message: 'entry must be a JSON object' },
  INGEST_ERR_ENTRY_TYPE: { status: 400, retryable: false, scope: 'entry', message: 'type must be one of log, metric, event, health, alert' },
  INGEST_ERR_ENTRY_FIELD_MISSING: { status: 400, retryable: false, scope: 'entry', message: 'a required field is missing' },
  INGEST_ERR_ENTRY_FIELD_TYPE: { status: 400, retryable: false, scope: 'entry', message: 'a field has the wrong type' },
  INGEST_ERR_ENTRY_TIMESTAMP: { status: 400, retryable: false, scope: 'entry', message: 'timestamp must be ISO 8601 or epoch milliseconds within the accepted window' },
  INGEST_ERR_ENTRY_ENUM: { status: 400, retryable: false, scope: 'entry', message: 'a field is not one of its allowed values' },
  INGEST_ERR_ENTRY_TOO_LARGE: { status: 400, retryable: false, scope: 'entry', message: 'a string or the entry is over its size bound' },
  INGEST_ERR_ENTRY_LABELS: { status: 400, retryable: false, scope: 'entry', message: 'labels must be a map of at most N string keys to string values' },
  INGEST_ERR_ENTRY_UNIT: { status: 400, retryable: false, scope: 'entry', message: 'the unit is not known' },
  INGEST_ERR_ENTRY_VALUE: { status: 400, retryable: false, scope: 'entry', message: 'a metric value must be a finite number' },
  INGEST_ERR_ENTRY_ID: { status: 400, retryable: false, scope: 'entry', message: 'id must be a string of 1 to 128 printable characters' },
  INGEST_ERR_STORE_REFUSED: { status: 400, retryable: false, scope: 'entry', message: 'the analytics store refused the entry: %s' },
  INGEST_ERR_ENTRY_UNDECODABLE: { status: 400, retryable: false, scope: 'entry', message: 'an item of a protocol body (a line, a record, a data point) could not be read as an entry' },
  INGEST_ERR_ENTRY_NAME: { status: 400, retryable: false, scope: 'entry', message: 'a metric name must match ^[a-zA-Z_:][a-zA-Z0-9_:.]*$' },

  // Requests Node's HTTP parser refuses before any route sees them (fastify clientErrorHandler).
  INGEST_ERR_MALFORMED_REQUEST: { status: 400, retryable: false, scope: 'request', message: 'the HTTP request is malformed (%s): check framing, header syntax (no CR/LF in values) and chunked encoding' },
  INGEST_ERR_HEADERS_TOO_LARGE: { status: 431, retryable: false, scope: 'request', message: 'the request headers are larger than the server accepts; send fewer or shorter headers' },
  INGEST_ERR_CHUNK_EXTENSIONS_TOO_LARGE: { status: 413, retryable: false, scope: 'request', message: 'the chunk extensions of the request body are larger than the server accepts' },
  INGEST_ERR_REQUEST_TIMEOUT: { status: 408, retryable: false, scope: 'request', message: 'the request did not arrive in full within the server\'s time limit' },
  INGEST_ERR_TOO_MANY_AUTH_FAILURES: { status: 429, retryable: true, scope: 'request', message: 'too many failed authentications from this address; retry after %s s' },
  INGEST_ERR_BODY_TOO_SLOW: { status: 408, retryable: false, scope: 'request', message: 'the body arrived slower than %s bytes/s after a %s s grace (%s bytes received); send it faster or in smaller batches' },
} as const satisfies Record<string, CatalogEntry>;

export type ErrorCode = keyof typeof ERROR_CATALOG;
export type EntryErrorCode = { [K in ErrorCode]: (typeof ERROR_CATALOG)[K]['scope'] extends 'entry' ? K : never }[ErrorCode];

/** Error body every service answers with. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string; retryable: boolean; retryAfterSeconds?: number };
}

/** An error that carries its catalog code; services turn it into an ErrorBody. */
export class IngestError extends Error {
  readonly code: ErrorCode;
  readonly statusCode: number;
  readonly retryable: boolean;
  /** Seconds for the Retry-After header on 429/503. */
  readonly retryAfterSeconds: number | undefined;
  readonly headers: Record<string, string>;

  constructor(code: ErrorCode, message?: string, opts: { retryAfterSeconds?: number; headers?: Record<string, string>; cause?: unknown } = {}) {
    const entry: CatalogEntry = ERROR_CATALOG[code];
    super(message ?? entry.message, { cause: opts.cause });
    this.name = 'IngestError';
    this.code = code;
    this.statusCode = entry.status;
    this.retryable = entry.retryable;
    this.retryAfterSeconds = opts.retryAfterSeconds;
    this.headers = opts.headers ?? {};
  }

  toBody(): ErrorBody {
    return {
      error: {
        code: this.code,
        message: this.message,
        retryable: this.retryable,
        ...(this.retryAfterSeconds !== undefined ? { retryAfterSeconds: this.retryAfterSeconds } : {}),
      },
    };
  }
}

/** Builds an IngestError filling the catalog template's `%s` slots in order. */
export function ingestError(code: ErrorCode, args: ReadonlyArray<string | number> = [], opts: ConstructorParameters<typeof IngestError>[2] = {}): IngestError {
  let i = 0;
  const message = ERROR_CATALOG[code].message.replace(/%s/g, () => String(args[i++] ?? ''));
  return new IngestError(code, message, opts);
}

export function isErrorCode(s: string): s is ErrorCode {
  return Object.hasOwn(ERROR_CATALOG, s);
}
