/** A background error as the client reports it (onError, stats().lastError). */
export interface ClientErrorInfo {
  code: string;
  message: string;
  /** Epoch ms. */
  at: number;
}

export interface ClientStats {
  /** Entries taken by record() / recordAsync(). */
  appendedTotal: number;
  /** Entries the edge accepted (2xx). */
  exportedTotal: number;
  /** Entries dropped by the full policy, or still in memory when close() gave up. */
  droppedTotal: number;
  /** Delivery attempts that will be retried. */
  retriesTotal: number;
  /** Entries the edge refused for good, or that ran out of retries. */
  failedTotal: number;
  /** Entries lost to a torn or corrupt WAL (found at start or while reading). */
  corruptTotal: number;
  /** Entries recorded and not yet done (buffered, on disk, or in flight). */
  backlog: number;
  /** Entries in the in-memory buffer, not yet in the WAL. */
  buffered: number;
  inFlight: number;
  diskBytes: number;
  /** Highest offset such that it and everything before it is done (-1: none). */
  ackedOffset: number;
  /** Offset the next WAL record gets. */
  nextOffset: number;
  /** Age of the oldest entry not yet done; 0 when there is none. */
  oldestUnackedAgeMs: number;
  lastError: ClientErrorInfo | null;
}

/**
 * What the buffer, the flusher and the sender all account into: the totals of stats(), the count
 * of WAL records not yet done, and the last background error. One object, so no part keeps its
 * own copy of a number another part also changes.
 */
export class Ledger {
  appended = 0;
  exported = 0;
  dropped = 0;
  retries = 0;
  failed = 0;
  corrupt = 0;
  /** WAL records not yet done: written or recovered, minus delivered, failed, dropped, lost. */
  walPending = 0;
  lastError: ClientErrorInfo | null = null;

  constructor(private readonly onError: ((err: ClientErrorInfo) => void) | undefined) {}

  note(code: string, message: string): void {
    this.lastError = { code, message, at: Date.now() };
    if (this.onError) {
      try {
        this.onError(this.lastError);
      } catch {
        // A throwing hook must not break delivery.
      }
    }
  }
}
