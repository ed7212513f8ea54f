import type { Settings } from './options.ts';
import type { Ledger } from './stats.ts';
import type { AckResult, Transport } from './transport.ts';
import type { Wal, WalRecord } from './wal/wal.ts';
import { backoffMs } from '@ingest/queue';

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

/** Batches read and not yet retired, relative to maxInFlight (done ones wait for earlier ones). */
const BATCH_WINDOW_FACTOR = 8;

/**
 * Reads the WAL in order and POSTs batches to the edge, at most maxInFlight at once; advances the
 * acknowledged offset over the contiguous prefix of batches the edge answered 2xx (or refused for
 * good) and persists it as the checkpoint. What the edge answers decides: retry with backoff
 * (honouring Retry-After), split, or fail.
 */
export class Sender {
  private wal: Wal | undefined;
  private readonly batches: Batch[] = [];
  private inFlightCount = 0;
  private reading = false;
  private pausedUntil = 0;
  private consecutiveFailures = 0;
  private readonly controllers = new Set<AbortController>();
  private readonly inflightDone = new Set<Promise<void>>();
  private retryTimer: NodeJS.Timeout | undefined;
  private retryTimerAt = 0;
  private checkpointTimer: NodeJS.Timeout | undefined;
  /** Set by close() once the optional drain is over: no more dispatches, retries or checkpoints. */
  private stopping = false;
  /** Most requests ever in flight at once (for tests and the bench). */
  maxObservedInFlight = 0;

  constructor(
    private readonly s: Settings,
    private readonly transport: Transport,
    private readonly ledger: Ledger,
    /** The checkpoint moved: the flusher may be waiting for disk space. */
    private readonly onSpaceFreed: () => void,
  ) {}

  get inFlight(): number {
    return this.inFlightCount;
  }

  start(wal: Wal): void {
    this.wal = wal;
    this.pump();
  }

  /** appendedAt of the oldest record read from the WAL and not yet done. */
  oldestAppendedAt(): number | undefined {
    return this.batches.find((x) => x.state !== 'done')?.oldestAppendedAt;
  }

  /**
   * close(): no more sends, retries or checkpoints; requests in flight are aborted (their entries
   * stay in the WAL for the next start) and waited for.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.checkpointTimer) clearTimeout(this.checkpointTimer);
    this.retryTimer = this.checkpointTimer = undefined;
    for (const ac of this.controllers) ac.abort();
    await Promise.allSettled([...this.inflightDone]);
  }

  /** Sends what it may: waiting batches first, then the next batch read from the WAL. */
  pump(): void {
    const wal = this.wal;
    if (!wal || this.stopping) return;
    const now = Date.now();
    if (now < this.pausedUntil) {
      this.armRetryTimer();
      return;
    }
    for (const b of this.batches) {
      if (this.inFlightCount >= this.s.maxInFlight) return;
      if (b.state === 'waiting') this.dispatch(b);
    }
    const open = this.batches.reduce((n, b) => n + (b.state === 'done' ? 0 : 1), 0);
    if (this.inFlightCount >= this.s.maxInFlight || open >= this.s.maxInFlight || this.reading) return;
    if (this.batches.length >= this.s.maxInFlight * BATCH_WINDOW_FACTOR || !wal.hasUnread) return;
    this.reading = true;
    const from = this.batches.length > 0 ? this.batches[this.batches.length - 1]!.to + 1 : wal.ackedOffset + 1;
    wal
      .read(this.s.maxBatchSize, this.s.maxBatchBytes)
      .then((r) => {
        if (r.lost > 0) {
          this.ledger.corrupt += r.lost;
          this.ledger.walPending -= r.lost;
          this.ledger.note('CLIENT_ERR_WAL_CORRUPT', `${r.lost} damaged record(s) skipped while reading the WAL`);
        }
        const last = r.records[r.records.length - 1];
        if (last) {
          const b: Batch = { from, to: last.offset, records: r.records, count: r.records.length, oldestAppendedAt: r.records[0]!.appendedAt, state: 'waiting', attempts: 0 };
          this.batches.push(b);
        }
      })
      .catch((e: unknown) => {
        if (!this.stopping) this.ledger.note('CLIENT_ERR_WAL_IO', (e as Error).message);
      })
      .finally(() => {
        this.reading = false;
        this.pump();
      });
  }

  private dispatch(b: Batch): void {
    b.state = 'inflight';
    this.inFlightCount++;
    if (this.inFlightCount > this.maxObservedInFlight) this.maxObservedInFlight = this.inFlightCount;
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
        this.inFlightCount--;
        // Processed even while closing: an ack that made it back still moves the checkpoint.
        this.onResult(b, r);
      })
      .catch((e: unknown) => this.ledger.note('CLIENT_ERR_INTERNAL', (e as Error).message))
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
        this.ledger.exported += r.accepted;
        this.ledger.failed += r.rejected.length;
        const first = r.rejected[0];
        if (first) this.ledger.note(first.code, `${r.rejected.length} entr${r.rejected.length === 1 ? 'y' : 'ies'} rejected; first: ${first.message}`);
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
        this.ledger.failed += b.count;
        this.ledger.note(r.code, r.message);
        this.retire(b);
        return;
      case 'auth':
        if (!this.s.holdOnAuthError) {
          this.ledger.failed += b.count;
          this.ledger.note(r.code, r.message);
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
    this.ledger.note(code, message);
    b.attempts++;
    if (this.s.maxRetries >= 0 && b.attempts > this.s.maxRetries) {
      this.ledger.failed += b.count;
      this.retire(b);
      return;
    }
    this.ledger.retries++;
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
    this.ledger.walPending -= b.count;
    let moved = false;
    while (this.batches[0]?.state === 'done') {
      this.wal?.ack(this.batches.shift()!.to);
      moved = true;
    }
    if (moved) {
      this.scheduleCheckpoint();
      this.onSpaceFreed();
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
        .then(() => this.onSpaceFreed())
        .catch((e: unknown) => this.ledger.note('CLIENT_ERR_WAL_IO', (e as Error).message));
    }, this.s.checkpointIntervalMs);
    this.checkpointTimer.unref();
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
