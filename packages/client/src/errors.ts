/**
 * Errors the SDK throws at its caller. Codes are stable (rename nothing, only add) so callers can
 * branch on `err.code` rather than on message text.
 */
export const CLIENT_ERROR_CODES = {
  /** rejectNew: the disk budget (maxDiskBytes) is used up by entries not yet delivered. */
  CLIENT_ERR_WAL_FULL: 'the write-ahead log is at its disk budget of %s bytes; the entry was not recorded',
  /** The in-memory buffer is full (the disk writer is behind, or block is waiting for disk space). */
  CLIENT_ERR_BUFFER_FULL: 'the in-memory buffer is full (%s); the entry was not recorded — use recordAsync() to wait for room',
  /** record() after close(). */
  CLIENT_ERR_CLOSED: 'the client is closed',
  /** flush() or drain() before start(). */
  CLIENT_ERR_NOT_STARTED: 'the client is not started: call start() first',
  /** The entry is not a JSON object with a type and a data object, or cannot be serialized. */
  CLIENT_ERR_INVALID_ENTRY: 'invalid entry: %s',
  /** The serialized entry is over maxEntryBytes. */
  CLIENT_ERR_ENTRY_TOO_LARGE: 'the entry serializes to %s bytes; the limit is %s',
  /** Another live process holds the WAL directory. */
  CLIENT_ERR_WAL_LOCKED: 'the WAL directory %s is in use by process %s',
  /** A configuration value is out of range. */
  CLIENT_ERR_CONFIG: 'invalid configuration: %s',
  /** recordAsync() waited longer than its timeout for room. */
  CLIENT_ERR_TIMEOUT: 'timed out after %s ms waiting for room in the buffer',
} as const;

export type ClientErrorCode = keyof typeof CLIENT_ERROR_CODES;

export class IngestClientError extends Error {
  readonly code: ClientErrorCode;

  constructor(code: ClientErrorCode, args: ReadonlyArray<string | number> = [], opts: { cause?: unknown } = {}) {
    let i = 0;
    super(CLIENT_ERROR_CODES[code].replace(/%s/g, () => String(args[i++] ?? '')), { cause: opts.cause });
    this.name = 'IngestClientError';
    this.code = code;
  }
}
