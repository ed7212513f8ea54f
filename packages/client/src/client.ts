import { ENTRY_TYPES, type EntryType } from '@ingest/contracts';
import { backoffMs } from '@ingest/queue';
import { Deque } from './deque.ts';
import { IngestClientError } from './errors.ts';
import { uuidv7 } from './ids.ts';
import { HttpTransport, type AckResult, type Transport } from './transport.ts';
import { recordSize } from './wal/format.ts';
import { Wal, WalWriteError, type FsyncPolicy, type WalItem, type WalRecord } from './wal/wal.ts';

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

/** An entry as the caller gives it; `id` and `timestamp` are filled in by record() when absent. */
export interface EntryInput {
  id?: string;
  type: EntryType;
  timestamp?: string | number;
  app?: string;
  source?: string;
  data: Record<string, unknown>;
  labels?: Record<string, string>;
}

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

interface Buffered extends WalItem {
  size: number;
}

interface Batch {
  /** First offset this batch accounts for (the reader's position when it was read). */
  from: number;
  /** Last offset in it, inclusive. */
  to: number;
  records: WalRecord[];
  count: number;
  oldestAppendedAt: number;
  state: 'waiting' | 'inflight' | 'done';
  attempts: number;
}

type Required2<T> = { [K in keyof T]-?: T[K] };
type Settings = Required2<Omit<IngestClientOptions, 'endpoint' | 'apiKey' | 'transport' | 'app' | 'onError'>>;

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

const TYPES: ReadonlySet<string> = new Set(ENTRY_TYPES);
/** Upper bounds of one WAL write (one fsync under perBatch). */
const WRITE_CHUNK_ENTRIES = 16_384;
const WRITE_CHUNK_BYTES = 4 * 1024 * 1024;
/** recordAsync() callers waiting for room; beyond this they get CLIENT_ERR_BUFFER_FULL at once. */
const MAX_ROOM_WAITERS = 1024;
/** Batches read and not yet retired, relative to maxInFlight (done ones wait for earlier ones). */
const BATCH_WINDOW_FACTOR = 8;

/**
 * The producer SDK. record() serializes the entry, gives it an id and appends it to a bounded
 * in-memory buffer — synchronously, never touching the network. A flusher writes the buffer to
 * the WAL; a sender reads the WAL in order, POSTs batches to the edge, and advances the
 * checkpoint over a batch only when the edge answered 2xx (or refused it for good).
 */
export class IngestClient implements AsyncDisposable {
  private readonly s: Settings;
  private readonly transport: Transport;
  private readonly app: string | undefined;
  private readonly onError: ((err: ClientErrorInfo) => void) | undefined;
  private wal: Wal | undefined;

  private readonly buffer = new Deque<Buffered>();
  private bufferedBytes = 0;
  /** The chunk being written: out of the buffer, not yet in the WAL. */
  private writingBytes = 0;
  private writingCount = 0;
  /** close() sets this so a flusher waiting for disk space under 'block' gives up in time. */
  private flushDeadline = Infinity;
  /** Entries ever accepted into the buffer, and entries that have left it (written or dropped). */
  private acceptedSeq = 0;
  private settledSeq = 0;
  private readonly settleWaiters: Array<{ target: number; resolve: () => void }> = [];
  private readonly roomWaiters: Array<{ item: Buffered; resolve: () => void; reject: (e: Error) => void; timer: NodeJS.Timeout | undefined }> = [];
  private spaceWaiter: (() => void) | undefined;

  private flushing = false;
  private flushAgain = false;
  private flushSoon = false;

  private readonly batches: Batch[] = [];
  private inFlight = 0;
  private reading = false;
  private pausedUntil = 0;
  private consecutiveFailures = 0;
  private readonly controllers = new Set<AbortController>();
  private readonly inflightDone = new Set<Promise<void>>();
  /** WAL records not yet done: written or recovered, minus delivered, failed, dropped, lost. */
  private walPending = 0;

  private flushTimer: NodeJS.Timeout | undefined;
  private syncTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryTimerAt = 0;
  private checkpointTimer: NodeJS.Timeout | undefined;

  private starting: Promise<void> | undefined;
  private started = false;
  private closing: Promise<void> | undefined;
  /** Set by close() once the optional drain is over: no more dispatches, retries or checkpoints. */
  private stopping = false;
  private closed = false;

  private readonly counters = { appended: 0, exported: 0, dropped: 0, retries: 0, failed: 0, corrupt: 0 };
  private lastError: ClientErrorInfo | null = null;
  /** Most requests ever in flight at once (for tests and the bench). */
  maxObservedInFlight = 0;

  constructor(opts: IngestClientOptions) {
    this.s = validate(opts);
    this.app = opts.app;
    this.onError = opts.onError;
    if (opts.transport) this.transport = opts.transport;
    else {
      if (!opts.endpoint || !opts.apiKey) throw new IngestClientError('CLIENT_ERR_CONFIG', ['endpoint and apiKey are required without a transport']);
      this.transport = new HttpTransport({ endpoint: opts.endpoint, apiKey: opts.apiKey, connections: this.s.maxInFlight, timeoutMs: this.s.requestTimeoutMs });
    }
  }

  /** Constructs and starts a client. */
  static async open(opts: IngestClientOptions): Promise<IngestClient> {
    const c = new IngestClient(opts);
    await c.start();
    return c;
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
      this.walPending = r.unackedRecords;
      if (r.corruptRecords > 0) {
        this.counters.corrupt += r.corruptRecords;
        this.noteError('CLIENT_ERR_WAL_CORRUPT', `recovery cut ${r.corruptRecords} damaged record(s) (${r.removedBytes} bytes) from the WAL`);
      }
      this.started = true;
      this.flushTimer = setInterval(() => this.kickFlusher(), this.s.flushIntervalMs);
      this.flushTimer.unref();
      if (this.s.fsync === 'interval') {
        this.syncTimer = setInterval(() => {
          this.wal?.sync().catch((e: unknown) => this.noteError('CLIENT_ERR_WAL_IO', (e as Error).message));
        }, this.s.fsyncIntervalMs);
        this.syncTimer.unref();
      }
      if (this.buffer.length > 0) this.kickFlusher();
      this.pump();
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
    this.admit(item, true);
    return id;
  }

  /**
   * record() that waits for room instead of throwing when the buffer is full — the lossless way to
   * use fullPolicy 'block'. Under the other policies it behaves as record().
   */
  async recordAsync(entry: EntryInput, opts: { timeoutMs?: number } = {}): Promise<string> {
    const { item, id } = this.prepare(entry);
    if (this.admit(item, this.s.fullPolicy !== 'block')) return id;
    if (this.roomWaiters.length >= MAX_ROOM_WAITERS) throw new IngestClientError('CLIENT_ERR_BUFFER_FULL', [`${MAX_ROOM_WAITERS} callers already waiting`]);
    await new Promise<void>((resolve, reject) => {
      const w: (typeof this.roomWaiters)[number] = { item, resolve, reject, timer: undefined };
      if (opts.timeoutMs !== undefined) {
        w.timer = setTimeout(() => {
          const i = this.roomWaiters.indexOf(w);
          if (i >= 0) this.roomWaiters.splice(i, 1);
          reject(new IngestClientError('CLIENT_ERR_TIMEOUT', [opts.timeoutMs ?? 0]));
        }, opts.timeoutMs);
        w.timer.unref();
      }
      this.roomWaiters.push(w);
      this.kickFlusher();
    });
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
    const target = this.acceptedSeq;
    if (this.settledSeq < target) {
      await new Promise<void>((resolve) => {
        this.settleWaiters.push({ target, resolve });
        this.kickFlusher();
      });
    }
    await this.wal?.sync();
    // 'interval' leaves writes unsynced; the explicit sync above made them durable.
  }

  /**
   * Waits until everything recorded so far is done (delivered, or failed for good) or the timeout
   * passes. Returns whether the backlog reached zero.
   */
  async drain(timeoutMs = 30_000): Promise<boolean> {
    if (!this.started) throw new IngestClientError(this.closed ? 'CLIENT_ERR_CLOSED' : 'CLIENT_ERR_NOT_STARTED');
    const deadline = Date.now() + timeoutMs;
    this.kickFlusher();
    while (this.backlog() > 0) {
      if (Date.now() >= deadline || this.closed) return false;
      // A ref'd timer: a caller awaiting drain() keeps the process alive until it resolves.
      await sleep(20, true);
    }
    return true;
  }

  stats(): ClientStats {
    return {
      appendedTotal: this.counters.appended,
      exportedTotal: this.counters.exported,
      droppedTotal: this.counters.dropped,
      retriesTotal: this.counters.retries,
      failedTotal: this.counters.failed,
      corruptTotal: this.counters.corrupt,
      backlog: this.backlog(),
      buffered: this.buffer.length + this.writingCount,
      inFlight: this.inFlight,
      diskBytes: this.wal?.diskBytes ?? 0,
      ackedOffset: this.wal?.ackedOffset ?? -1,
      nextOffset: this.wal?.nextOffset ?? 0,
      oldestUnackedAgeMs: this.oldestUnackedAgeMs(),
      lastError: this.lastError,
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

  // ---- record path ----

  private prepare(entry: EntryInput): { item: Buffered; id: string } {
    if (this.closing) throw new IngestClientError('CLIENT_ERR_CLOSED');
    if (typeof entry !== 'object' || entry === null) throw new IngestClientError('CLIENT_ERR_INVALID_ENTRY', ['an entry must be an object']);
    if (!TYPES.has(entry.type)) throw new IngestClientError('CLIENT_ERR_INVALID_ENTRY', [`type must be one of ${ENTRY_TYPES.join(', ')}`]);
    if (typeof entry.data !== 'object' || entry.data === null || Array.isArray(entry.data)) throw new IngestClientError('CLIENT_ERR_INVALID_ENTRY', ['data must be an object']);
    const now = Date.now();
    const id = entry.id ?? uuidv7(now);
    // Explicit nulls take the copying path, so the filled-in value is the only one serialized.
    const copy = entry.id === null || entry.timestamp === null;
    let json: string;
    try {
      json = copy ? JSON.stringify({ ...entry, id, timestamp: entry.timestamp ?? now }) : JSON.stringify(entry);
    } catch (e) {
      throw new IngestClientError('CLIENT_ERR_INVALID_ENTRY', [(e as Error).message], { cause: e });
    }
    // Splicing id and timestamp into the serialized object saves copying the entry on the hot
    // path. `json` is an object with at least type and data, so "{" + ours + "," + rest is valid.
    if (!copy && (entry.id === undefined || entry.timestamp === undefined)) {
      if (json.length < 3 || json.charCodeAt(0) !== 123) throw new IngestClientError('CLIENT_ERR_INVALID_ENTRY', ['the entry must serialize to a JSON object']);
      const head = entry.id === undefined ? (entry.timestamp === undefined ? `{"id":"${id}","timestamp":${now},` : `{"id":"${id}",`) : `{"timestamp":${now},`;
      json = head + json.slice(1);
    }
    // The edge refuses a whole request holding these keys (prototype pollution); refusing the one
    // entry here keeps it from sinking the batch it would land in. Keys serialize as "k": only.
    if (json.includes('"__proto__":') || (json.includes('"constructor":') && json.includes('"prototype":'))) {
      throw new IngestClientError('CLIENT_ERR_INVALID_ENTRY', ['the keys "__proto__" and constructor.prototype are refused by the edge']);
    }
    const payload = Buffer.from(json, 'utf8');
    if (payload.length > this.s.maxEntryBytes) throw new IngestClientError('CLIENT_ERR_ENTRY_TOO_LARGE', [payload.length, this.s.maxEntryBytes]);
    return { item: { payload, appendedAt: now, size: recordSize(payload.length) }, id };
  }

  /** Puts an item in the buffer or applies the full policy. false only when `mayThrow` is false. */
  private admit(item: Buffered, mayThrow: boolean): boolean {
    const policy = this.s.fullPolicy;
    if (policy === 'rejectNew') {
      const used = (this.wal?.usedBytes ?? 0) + this.bufferedBytes + this.writingBytes + item.size;
      if (used > this.s.maxDiskBytes) throw new IngestClientError('CLIENT_ERR_WAL_FULL', [this.s.maxDiskBytes]);
    }
    if (this.isFull(item.size) || this.roomWaiters.length > 0) {
      if (policy === 'dropOldest') {
        while (this.isFull(item.size) && this.buffer.length > 0) {
          const old = this.buffer.shift()!;
          this.bufferedBytes -= old.size;
          this.counters.dropped++;
          this.settle(1);
        }
      } else if (mayThrow) {
        this.kickFlusher();
        throw new IngestClientError('CLIENT_ERR_BUFFER_FULL', [`${this.buffer.length} entries, ${this.bufferedBytes} bytes`]);
      } else {
        return false;
      }
    }
    this.push(item);
    return true;
  }

  private isFull(size: number): boolean {
    return this.buffer.length >= this.s.maxBufferEntries || this.bufferedBytes + size > this.s.maxBufferBytes;
  }

  private push(item: Buffered): void {
    this.buffer.push(item);
    this.bufferedBytes += item.size;
    this.counters.appended++;
    this.acceptedSeq++;
    if (this.s.fsync === 'always' || this.buffer.length >= this.s.maxBatchSize) this.scheduleFlushSoon();
  }

  private settle(n: number): void {
    this.settledSeq += n;
    while (this.settleWaiters.length > 0) {
      const i = this.settleWaiters.findIndex((w) => w.target <= this.settledSeq);
      if (i < 0) break;
      this.settleWaiters.splice(i, 1)[0]!.resolve();
    }
    this.admitWaiters();
  }

  private admitWaiters(): void {
    while (this.roomWaiters.length > 0) {
      const w = this.roomWaiters[0]!;
      if (this.isFull(w.item.size)) break;
      this.roomWaiters.shift();
      if (w.timer) clearTimeout(w.timer);
      this.push(w.item);
      w.resolve();
    }
  }

  // ---- flusher: buffer → WAL ----

  private scheduleFlushSoon(): void {
    if (this.flushSoon || !this.started) return;
    this.flushSoon = true;
    setImmediate(() => {
      this.flushSoon = false;
      this.kickFlusher();
    });
  }

  private kickFlusher(): void {
    if (!this.started || this.closed) return;
    if (this.flushing) {
      this.flushAgain = true;
      return;
    }
    this.flushing = true;
    this.runFlusher()
      .catch((e: unknown) => this.noteError('CLIENT_ERR_WAL_IO', (e as Error).message))
      .finally(() => {
        this.flushing = false;
        if (this.flushAgain && !this.closed) {
          this.flushAgain = false;
          this.kickFlusher();
        }
      });
  }

  private async runFlusher(deadline = Infinity): Promise<void> {
    const wal = this.wal;
    if (!wal) return;
    let failures = 0;
    while (this.buffer.length > 0 && !this.closed) {
      // The chunk leaves the buffer while it is written, so dropOldest evicting from the buffer
      // meanwhile can never remove an entry that is being written.
      const chunk = this.takeChunk();
      if (!(await this.ensureSpace(wal, this.writingBytes, deadline))) {
        this.putBack(chunk);
        return;
      }
      try {
        await wal.append(chunk);
        this.written(chunk.length);
        failures = 0;
      } catch (e) {
        const n = e instanceof WalWriteError ? e.written : 0;
        this.written(n);
        this.putBack(chunk.slice(n));
        this.noteError('CLIENT_ERR_WAL_IO', (e as Error).message);
        // The entries stay buffered (bounded) and the write is retried: a full or flaky disk
        // should not lose what record() already accepted.
        await sleep(backoffMs(++failures, { initialMs: 50, maxMs: 2000, jitter: 'none' }));
        if (Date.now() >= Math.min(deadline, this.flushDeadline)) return;
      }
    }
  }

  /**
   * Takes the next write from the head of the buffer: everything buffered, up to a byte cap. One
   * write and one fsync per chunk is the group commit that lets perBatch keep up with a hot loop.
   */
  private takeChunk(): Buffered[] {
    const cap = Math.min(WRITE_CHUNK_BYTES, Math.floor(this.s.maxDiskBytes / 4));
    const candidates = this.buffer.slice(WRITE_CHUNK_ENTRIES);
    let bytes = 0;
    let n = 0;
    for (const c of candidates) {
      if (n > 0 && bytes + c.size > cap) break;
      bytes += c.size;
      n++;
    }
    const chunk = candidates.slice(0, n);
    this.buffer.drop(n);
    this.bufferedBytes -= bytes;
    this.writingBytes = bytes;
    this.writingCount = n;
    return chunk;
  }

  private putBack(items: Buffered[]): void {
    let bytes = 0;
    for (const it of items) bytes += it.size;
    this.buffer.prepend(items);
    this.bufferedBytes += bytes;
    this.writingBytes = 0;
    this.writingCount = 0;
  }

  private written(n: number): void {
    this.writingBytes = 0;
    this.writingCount = 0;
    if (n === 0) return;
    this.walPending += n;
    this.settle(n);
    this.pump();
  }

  /** Makes room for `need` bytes within maxDiskBytes per the full policy; false if it gave up. */
  private async ensureSpace(wal: Wal, need: number, deadline: number): Promise<boolean> {
    for (;;) {
      if (wal.usedBytes + need <= this.s.maxDiskBytes) {
        if (wal.diskBytes + need > this.s.maxDiskBytes) await wal.reclaim();
        return true;
      }
      await wal.reclaim();
      if (wal.usedBytes + need <= this.s.maxDiskBytes) return true;
      if (this.s.fullPolicy === 'dropOldest') {
        const r = await wal.dropOldest();
        if (r) {
          this.counters.dropped += r.unread;
          this.walPending -= r.unread;
          if (r.unread > 0) this.noteError('CLIENT_ERR_WAL_FULL', `disk budget reached: dropped the oldest ${r.unread} undelivered entries`);
          continue;
        }
        // Nothing left to drop but in-flight data: write anyway rather than lose new entries.
        return true;
      }
      // block (and rejectNew, whose budget check in record() can be outrun by recovered data):
      // wait for the sender to free space.
      const until = Math.min(deadline, this.flushDeadline);
      if (Date.now() >= until || this.closed) return false;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(1000, Math.max(1, until - Date.now())));
        t.unref();
        this.spaceWaiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.spaceWaiter = undefined;
    }
  }

  // ---- sender: WAL → edge ----

  private pump(): void {
    const wal = this.wal;
    if (!wal || !this.started || this.stopping) return;
    const now = Date.now();
    if (now < this.pausedUntil) {
      this.armRetryTimer();
      return;
    }
    for (const b of this.batches) {
      if (this.inFlight >= this.s.maxInFlight) return;
      if (b.state === 'waiting') this.dispatch(b);
    }
    const open = this.batches.reduce((n, b) => n + (b.state === 'done' ? 0 : 1), 0);
    if (this.inFlight >= this.s.maxInFlight || open >= this.s.maxInFlight || this.reading) return;
    if (this.batches.length >= this.s.maxInFlight * BATCH_WINDOW_FACTOR || !wal.hasUnread) return;
    this.reading = true;
    const from = this.batches.length > 0 ? this.batches[this.batches.length - 1]!.to + 1 : wal.ackedOffset + 1;
    wal
      .read(this.s.maxBatchSize, this.s.maxBatchBytes)
      .then((r) => {
        if (r.lost > 0) {
          this.counters.corrupt += r.lost;
          this.walPending -= r.lost;
          this.noteError('CLIENT_ERR_WAL_CORRUPT', `${r.lost} damaged record(s) skipped while reading the WAL`);
        }
        const last = r.records[r.records.length - 1];
        if (last) {
          const b: Batch = { from, to: last.offset, records: r.records, count: r.records.length, oldestAppendedAt: r.records[0]!.appendedAt, state: 'waiting', attempts: 0 };
          this.batches.push(b);
        }
      })
      .catch((e: unknown) => {
        if (!this.stopping) this.noteError('CLIENT_ERR_WAL_IO', (e as Error).message);
      })
      .finally(() => {
        this.reading = false;
        this.pump();
      });
  }

  private dispatch(b: Batch): void {
    b.state = 'inflight';
    this.inFlight++;
    if (this.inFlight > this.maxObservedInFlight) this.maxObservedInFlight = this.inFlight;
    const ac = new AbortController();
    this.controllers.add(ac);
    let result: Promise<AckResult>;
    try {
      result = this.transport.send(
        b.records.map((r) => r.payload),
        { signal: ac.signal },
      );
    } catch (e) {
      result = Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
    const settled = result
      .catch((e: unknown): AckResult => ({ kind: 'retry', code: 'CLIENT_ERR_TRANSPORT', message: (e as Error)?.message ?? String(e) }))
      .then((r) => {
        this.controllers.delete(ac);
        this.inFlight--;
        // Processed even while closing: an ack that made it back still moves the checkpoint.
        this.onResult(b, r);
      })
      .catch((e: unknown) => this.noteError('CLIENT_ERR_INTERNAL', (e as Error).message))
      .finally(() => {
        this.inflightDone.delete(settled);
        this.pump();
      });
    this.inflightDone.add(settled);
  }

  private onResult(b: Batch, r: AckResult): void {
    switch (r.kind) {
      case 'ok': {
        this.consecutiveFailures = 0;
        this.counters.exported += r.accepted;
        this.counters.failed += r.rejected.length;
        const first = r.rejected[0];
        if (first) this.noteError(first.code, `${r.rejected.length} entr${r.rejected.length === 1 ? 'y' : 'ies'} rejected; first: ${first.message}`);
        this.retire(b);
        return;
      }
      case 'tooLarge':
      case 'reject':
        // Too large: halves fit. A 400 for the whole request is usually one bad entry (nesting too
        // deep, a forbidden key): bisect so it fails alone instead of taking its batch with it.
        if (b.count > 1 && (r.kind === 'tooLarge' || r.status === 400)) {
          this.split(b);
          return;
        }
        this.counters.failed += b.count;
        this.noteError(r.code, r.message);
        this.retire(b);
        return;
      case 'auth':
        if (!this.s.holdOnAuthError) {
          this.counters.failed += b.count;
          this.noteError(r.code, r.message);
          this.retire(b);
          return;
        }
        this.retryLater(b, r.code, r.message, undefined);
        return;
      case 'retry':
        this.retryLater(b, r.code, r.message, r.retryAfterMs);
        return;
    }
  }

  private retryLater(b: Batch, code: string, message: string, retryAfterMs: number | undefined): void {
    if (this.stopping) {
      // Aborted by close(): the batch stays in the WAL for the next start; not a retry.
      b.state = 'waiting';
      return;
    }
    this.noteError(code, message);
    b.attempts++;
    if (this.s.maxRetries >= 0 && b.attempts > this.s.maxRetries) {
      this.counters.failed += b.count;
      this.retire(b);
      return;
    }
    this.counters.retries++;
    this.consecutiveFailures++;
    b.state = 'waiting';
    const delay = retryDelay(this.consecutiveFailures, this.s.backoffBaseMs, this.s.backoffMaxMs, retryAfterMs === undefined ? undefined : Math.min(retryAfterMs, this.s.maxRetryAfterMs));
    // One pause for the whole sender: the edge said "not now" to this client, not to one batch.
    this.pausedUntil = Math.max(this.pausedUntil, Date.now() + delay);
    this.armRetryTimer();
  }

  /** 413 or a 400: halve the batch; both halves keep their place in offset order. */
  private split(b: Batch): void {
    const mid = Math.ceil(b.records.length / 2);
    const left = b.records.slice(0, mid);
    const right = b.records.slice(mid);
    const a: Batch = { from: b.from, to: left[left.length - 1]!.offset, records: left, count: left.length, oldestAppendedAt: left[0]!.appendedAt, state: 'waiting', attempts: b.attempts };
    const c: Batch = { from: a.to + 1, to: b.to, records: right, count: right.length, oldestAppendedAt: right[0]!.appendedAt, state: 'waiting', attempts: b.attempts };
    const i = this.batches.indexOf(b);
    this.batches.splice(i, 1, a, c);
  }

  /** Marks a batch done and advances the acknowledged offset over the done prefix. */
  private retire(b: Batch): void {
    b.state = 'done';
    b.records = [];
    this.walPending -= b.count;
    let moved = false;
    while (this.batches[0]?.state === 'done') {
      this.wal?.ack(this.batches.shift()!.to);
      moved = true;
    }
    if (moved) {
      this.scheduleCheckpoint();
      this.spaceWaiter?.();
    }
  }

  /** Exactly one retry timer: re-armed only when the pause moves later. */
  private armRetryTimer(): void {
    if (this.retryTimer && this.retryTimerAt >= this.pausedUntil) return;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimerAt = this.pausedUntil;
    this.retryTimer = setTimeout(
      () => {
        this.retryTimer = undefined;
        this.pump();
      },
      Math.max(0, this.pausedUntil - Date.now()),
    );
    this.retryTimer.unref();
  }

  private scheduleCheckpoint(): void {
    if (this.checkpointTimer || this.stopping) return;
    this.checkpointTimer = setTimeout(() => {
      this.checkpointTimer = undefined;
      this.wal
        ?.persistCheckpoint()
        .then(() => this.spaceWaiter?.())
        .catch((e: unknown) => this.noteError('CLIENT_ERR_WAL_IO', (e as Error).message));
    }, this.s.checkpointIntervalMs);
    this.checkpointTimer.unref();
  }

  // ---- misc ----

  private backlog(): number {
    return this.buffer.length + this.writingCount + this.walPending;
  }

  private oldestUnackedAgeMs(): number {
    let oldest = Infinity;
    const b = this.batches.find((x) => x.state !== 'done');
    if (b) oldest = b.oldestAppendedAt;
    const unread = this.wal?.oldestUnreadAppendedAt();
    if (unread !== undefined) oldest = Math.min(oldest, unread);
    const head = this.buffer.peek();
    if (head) oldest = Math.min(oldest, head.appendedAt);
    return oldest === Infinity ? 0 : Math.max(0, Date.now() - oldest);
  }

  private noteError(code: string, message: string): void {
    this.lastError = { code, message, at: Date.now() };
    if (this.onError) {
      try {
        this.onError(this.lastError);
      } catch {
        // A throwing hook must not break delivery.
      }
    }
  }

  private async doClose(opts: { drainTimeoutMs?: number; flushTimeoutMs?: number }): Promise<void> {
    for (const w of this.roomWaiters.splice(0)) {
      if (w.timer) clearTimeout(w.timer);
      w.reject(new IngestClientError('CLIENT_ERR_CLOSED'));
    }
    if (this.starting) await this.starting.catch(() => undefined);
    if (this.started && opts.drainTimeoutMs !== undefined && opts.drainTimeoutMs > 0) {
      const deadline = Date.now() + opts.drainTimeoutMs;
      this.kickFlusher();
      while (this.backlog() > 0 && Date.now() < deadline) await sleep(20, true);
    }
    // From here nothing is sent; the flusher still runs once more to put the buffer on disk.
    this.stopping = true;
    this.flushDeadline = Date.now() + (opts.flushTimeoutMs ?? 30_000);
    if (this.flushTimer) clearInterval(this.flushTimer);
    if (this.syncTimer) clearInterval(this.syncTimer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.checkpointTimer) clearTimeout(this.checkpointTimer);
    this.retryTimer = this.checkpointTimer = this.flushTimer = this.syncTimer = undefined;
    for (const ac of this.controllers) ac.abort();
    await Promise.allSettled([...this.inflightDone]);
    const wal = this.wal;
    if (wal) {
      while (this.flushing) await sleep(5, true);
      this.flushing = true;
      try {
        await this.runFlusher(this.flushDeadline);
      } catch (e) {
        this.noteError('CLIENT_ERR_WAL_IO', (e as Error).message);
      } finally {
        this.flushing = false;
      }
    }
    if (this.buffer.length > 0) {
      const n = this.buffer.length;
      this.counters.dropped += n;
      this.buffer.drop(n);
      this.bufferedBytes = 0;
      this.settle(n);
      this.noteError('CLIENT_ERR_BUFFER_FULL', `close() could not write ${n} buffered entries to the WAL`);
    }
    for (const w of this.settleWaiters.splice(0)) w.resolve();
    this.closed = true;
    try {
      await wal?.close();
    } finally {
      await this.transport.close();
    }
  }
}

/**
 * Backoff before the next attempt: exponential with equal jitter (half fixed, half random), and
 * never less than the server's Retry-After — the larger of the two, as the OpenTelemetry
 * collector does.
 */
export function retryDelay(consecutiveFailures: number, baseMs: number, maxMs: number, retryAfterMs: number | undefined, random = Math.random): number {
  const backoff = backoffMs(consecutiveFailures, { initialMs: baseMs, maxMs }, random);
  if (retryAfterMs === undefined) return backoff;
  // A little jitter on top of Retry-After so a fleet told "1 s" does not come back in lockstep.
  return Math.round(Math.max(backoff, retryAfterMs + random() * Math.min(1000, retryAfterMs * 0.1)));
}

function validate(o: IngestClientOptions): Settings {
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

function sleep(ms: number, ref = false): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    if (!ref) t.unref();
  });
}
