import { RecordBuffer, type Buffered } from './buffer.ts';
import { encodeEntry, type EntryInput } from './entry.ts';
import { IngestClientError } from './errors.ts';
import { Flusher } from './flusher.ts';
import { validateOptions, type IngestClientOptions, type Settings } from './options.ts';
import { Sender } from './sender.ts';
import { sleep } from './sleep.ts';
import { Ledger, type ClientStats } from './stats.ts';
import { HttpTransport, type Transport } from './transport.ts';
import { recordSize } from './wal/format.ts';
import { Wal } from './wal/wal.ts';

/**
 * The producer SDK. record() serializes the entry, gives it an id and appends it to a bounded
 * in-memory buffer (buffer.ts) — synchronously, never touching the network. A flusher
 * (flusher.ts) writes the buffer to the WAL; a sender (sender.ts) reads the WAL in order, POSTs
 * batches to the edge, and advances the checkpoint over a batch only when the edge answered 2xx
 * (or refused it for good). This class wires them together and owns the lifecycle.
 */
export class IngestClient implements AsyncDisposable {
  private readonly s: Settings;
  private readonly transport: Transport;
  private readonly app: string | undefined;
  private readonly ledger: Ledger;
  private readonly buffer: RecordBuffer;
  private readonly flusher: Flusher;
  private readonly sender: Sender;
  private wal: Wal | undefined;

  private starting: Promise<void> | undefined;
  private started = false;
  private closing: Promise<void> | undefined;
  private closed = false;

  constructor(opts: IngestClientOptions) {
    this.s = validateOptions(opts);
    this.app = opts.app;
    if (opts.transport) this.transport = opts.transport;
    else {
      if (!opts.endpoint || !opts.apiKey) throw new IngestClientError('CLIENT_ERR_CONFIG', ['endpoint and apiKey are required without a transport']);
      this.transport = new HttpTransport({ endpoint: opts.endpoint, apiKey: opts.apiKey, connections: this.s.maxInFlight, timeoutMs: this.s.requestTimeoutMs });
    }
    this.ledger = new Ledger(opts.onError);
    this.buffer = new RecordBuffer(this.s, this.ledger, {
      diskUsedBytes: () => this.wal?.usedBytes ?? 0,
      flushNow: () => this.flusher.kick(),
      flushSoon: () => this.flusher.scheduleSoon(),
    });
    this.flusher = new Flusher(this.s, this.buffer, this.ledger, () => this.sender.pump());
    this.sender = new Sender(this.s, this.transport, this.ledger, () => this.flusher.spaceFreed());
  }

  /** Constructs and starts a client. */
  static async open(opts: IngestClientOptions): Promise<IngestClient> {
    const c = new IngestClient(opts);
    await c.start();
    return c;
  }

  /** Most requests ever in flight at once (for tests and the bench). */
  get maxObservedInFlight(): number {
    return this.sender.maxObservedInFlight;
  }

  /**
   * Opens and recovers the WAL, then starts the flusher and the sender. Idempotent. Entries
   * recorded before start() wait in the buffer.
   */
  start(): Promise<void> {
    if (this.closing) return Promise.reject(new IngestClientError('CLIENT_ERR_CLOSED'));
    this.starting ??= (async () => {
      const wal = await Wal.open({ dir: this.s.walDir, segmentBytes: this.s.segmentBytes, fsync: this.s.fsync });
      this.wal = wal;
      const r = wal.recovery;
      this.ledger.walPending = r.unackedRecords;
      if (r.corruptRecords > 0) {
        this.ledger.corrupt += r.corruptRecords;
        this.ledger.note('CLIENT_ERR_WAL_CORRUPT', `recovery cut ${r.corruptRecords} damaged record(s) (${r.removedBytes} bytes) from the WAL`);
      }
      this.started = true;
      this.flusher.start(wal);
      this.sender.start(wal);
    })();
    return this.starting;
  }

  /**
   * Takes one entry: fills in `id` (a UUIDv7) and `timestamp` (now) when absent, serializes it and
   * appends it to the in-memory buffer. Synchronous; never waits for disk or network. Returns the
   * id. Throws IngestClientError for an invalid or oversized entry, after close(), and when full
   * under rejectNew (CLIENT_ERR_WAL_FULL) or block (CLIENT_ERR_BUFFER_FULL: use recordAsync).
   */
  record(entry: EntryInput): string {
    const { item, id } = this.prepare(entry);
    this.buffer.admit(item, true);
    return id;
  }

  /**
   * record() that waits for room instead of throwing when the buffer is full — the lossless way to
   * use fullPolicy 'block'. Under the other policies it behaves as record().
   */
  async recordAsync(entry: EntryInput, opts: { timeoutMs?: number } = {}): Promise<string> {
    const { item, id } = this.prepare(entry);
    if (this.buffer.admit(item, this.s.fullPolicy !== 'block')) return id;
    await this.buffer.waitForRoom(item, opts.timeoutMs);
    return id;
  }

  emitLog(app: string, level: string, message: string, labels?: Record<string, string>): string {
    return this.record({ type: 'log', app, data: { level, message }, ...(labels ? { labels } : {}) });
  }

  emitMetric(name: string, value: number, labels?: Record<string, string>, app?: string): string {
    const a = app ?? this.app;
    return this.record({ type: 'metric', ...(a !== undefined ? { app: a } : {}), data: { name, value }, ...(labels ? { labels } : {}) });
  }

  emitHealth(app: string, status: string, details?: Record<string, unknown>): string {
    return this.record({ type: 'health', app, data: { ...details, status } });
  }

  /**
   * Resolves once every entry recorded before the call is in the WAL and fsync'd (whatever the
   * fsync policy). Does not wait for delivery — see drain(). Under 'block' with the disk budget
   * used up, it waits until delivery frees space.
   */
  async flush(): Promise<void> {
    if (!this.started) throw new IngestClientError(this.closed ? 'CLIENT_ERR_CLOSED' : 'CLIENT_ERR_NOT_STARTED');
    await this.buffer.untilSettled();
    // 'interval' leaves writes unsynced; this explicit sync makes them durable.
    await this.wal?.sync();
  }

  /**
   * Waits until everything recorded so far is done (delivered, or failed for good) or the timeout
   * passes. Returns whether the backlog reached zero.
   */
  async drain(timeoutMs = 30_000): Promise<boolean> {
    if (!this.started) throw new IngestClientError(this.closed ? 'CLIENT_ERR_CLOSED' : 'CLIENT_ERR_NOT_STARTED');
    const deadline = Date.now() + timeoutMs;
    this.flusher.kick();
    while (this.backlog() > 0) {
      if (Date.now() >= deadline || this.closed) return false;
      // A ref'd timer: a caller awaiting drain() keeps the process alive until it resolves.
      await sleep(20, true);
    }
    return true;
  }

  stats(): ClientStats {
    const l = this.ledger;
    return {
      appendedTotal: l.appended,
      exportedTotal: l.exported,
      droppedTotal: l.dropped,
      retriesTotal: l.retries,
      failedTotal: l.failed,
      corruptTotal: l.corrupt,
      backlog: this.backlog(),
      buffered: this.buffer.unwritten,
      inFlight: this.sender.inFlight,
      diskBytes: this.wal?.diskBytes ?? 0,
      ackedOffset: this.wal?.ackedOffset ?? -1,
      nextOffset: this.wal?.nextOffset ?? 0,
      oldestUnackedAgeMs: this.oldestUnackedAgeMs(),
      lastError: l.lastError,
    };
  }

  /**
   * Writes the buffer to the WAL and fsyncs it, stops timers, aborts requests in flight (their
   * entries stay in the WAL and go out on the next start; ids make the repeat harmless), persists
   * the checkpoint and closes the WAL. `drainTimeoutMs` first gives delivery that long;
   * `flushTimeoutMs` bounds the wait for disk space under 'block' (what is still in memory then
   * counts as dropped). Idempotent.
   */
  close(opts: { drainTimeoutMs?: number; flushTimeoutMs?: number } = {}): Promise<void> {
    this.closing ??= this.doClose(opts);
    return this.closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private prepare(entry: EntryInput): { item: Buffered; id: string } {
    if (this.closing) throw new IngestClientError('CLIENT_ERR_CLOSED');
    const now = Date.now();
    const { payload, id } = encodeEntry(entry, this.s.maxEntryBytes, now);
    return { item: { payload, appendedAt: now, size: recordSize(payload.length) }, id };
  }

  private backlog(): number {
    return this.buffer.unwritten + this.ledger.walPending;
  }

  private oldestUnackedAgeMs(): number {
    let oldest = this.sender.oldestAppendedAt() ?? Infinity;
    const unread = this.wal?.oldestUnreadAppendedAt();
    if (unread !== undefined) oldest = Math.min(oldest, unread);
    const head = this.buffer.oldestAppendedAt();
    if (head !== undefined) oldest = Math.min(oldest, head);
    return oldest === Infinity ? 0 : Math.max(0, Date.now() - oldest);
  }

  private async doClose(opts: { drainTimeoutMs?: number; flushTimeoutMs?: number }): Promise<void> {
    this.buffer.rejectRoomWaiters(new IngestClientError('CLIENT_ERR_CLOSED'));
    if (this.starting) await this.starting.catch(() => undefined);
    if (this.started && opts.drainTimeoutMs !== undefined && opts.drainTimeoutMs > 0) {
      const deadline = Date.now() + opts.drainTimeoutMs;
      this.flusher.kick();
      while (this.backlog() > 0 && Date.now() < deadline) await sleep(20, true);
    }
    // From here nothing is sent; the flusher still runs once more to put the buffer on disk.
    this.flusher.stopTimers(opts.flushTimeoutMs ?? 30_000);
    await this.sender.stop();
    await this.flusher.finalFlush();
    const dropped = this.buffer.dropAll();
    if (dropped > 0) this.ledger.note('CLIENT_ERR_BUFFER_FULL', `close() could not write ${dropped} buffered entries to the WAL`);
    this.closed = true;
    this.flusher.close();
    try {
      await this.wal?.close();
    } finally {
      await this.transport.close();
    }
  }
}
