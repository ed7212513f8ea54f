import type { DeadLetter, NormalizedEntry } from '@ingest/contracts';
import { HEADERS } from '@ingest/contracts';
import type { LogConsumer, LogMessage, LogProducer, MessageBatch } from '@ingest/log';
import { insertRefusal, toRow, type InsertRefusal, type TableName, type TelemetryRow, type TelemetryStore } from '@ingest/storage';
import { daysOf, type DayGate } from './day-gate.ts';

/**
 * The dedup token of a block: the log range it came from. A retry of the same range (after a
 * failed or unknown-outcome insert) carries the same token and is dropped by ClickHouse; a
 * re-read with other boundaries is still collapsed by the table's (tenant, id) key.
 */
export function dedupToken(batch: Pick<MessageBatch, 'topic' | 'partition' | 'firstOffset' | 'lastOffset'>, scope = 'live'): string {
  return `${scope}:${batch.topic}:${batch.partition}:${batch.firstOffset}-${batch.lastOffset}`;
}

/** Decodes a log batch into rows; a message that can't be decoded is reported, never inserted. */
export function batchToRows(batch: MessageBatch, onBad: (offset: number, reason: string) => void): TelemetryRow[] {
  const rows: TelemetryRow[] = [];
  for (const m of batch.messages) {
    try {
      const e = JSON.parse(m.value.toString('utf8')) as NormalizedEntry;
      rows.push(toRow(e, m.partition, m.offset));
    } catch (err) {
      onBad(m.offset, (err as Error).message);
    }
  }
  return rows;
}

export interface LoaderHooks {
  onInserted?: (batch: MessageBatch, rows: number, ms: number) => void;
  onError?: (batch: MessageBatch, err: unknown) => void;
  onBadMessage?: (batch: MessageBatch, offset: number, reason: string) => void;
  /** Rows of `batch` ClickHouse refused for their data, sent to the dead-letter topic. */
  onDeadLettered?: (batch: MessageBatch, refused: ReadonlyArray<{ row: TelemetryRow; refusal: InsertRefusal }>) => void;
}

export interface LoaderOptions {
  /**
   * Where rows ClickHouse refuses for their data go. Without it a refused batch is retried like a
   * transient failure (the mirror loader: legacy is authoritative for that data, not our DLQ).
   */
  deadLetter?: { producer: LogProducer; topic: string };
  /**
   * Attempts at a batch refused for its data before it is split and its refused rows dead-lettered.
   * More than one so a refusal caused by a transient server state is not mistaken for bad data.
   */
  refusedAttempts?: number;
  /** Shared with promote, which holds a day so no insert lands between its check and its REPLACE. */
  gate?: DayGate;
}

export const DEFAULT_REFUSED_ATTEMPTS = 3;
/** What a dead letter keeps of the entry: enough to see the bad field, bounded like the normalizer's. */
const MAX_DEAD_LETTER_RAW = 8 * 1024;
/** Batches a loader can be retrying at once is one per partition; this only guards against a leak. */
const MAX_TRACKED_BATCHES = 4096;

/**
 * Log → ClickHouse. The consumer commits a batch's offsets only after its insert resolved, so a
 * crash between the two re-inserts that range (deduplicated), and never skips it.
 *
 * A transient failure is thrown back to the consumer, which retries the same batch after its own
 * capped backoff, for as long as it takes. A batch ClickHouse refuses for its data is retried a few
 * times, then bisected: halves that insert land, single refused rows go to the dead-letter topic
 * with ClickHouse's reason, and the batch resolves so its partition moves on.
 */
export class ClickHouseLoader {
  private running: Promise<void> | undefined;
  private readonly refusedAttempts: number;
  /** Refused attempts per batch token; a retried batch has the same token. */
  private readonly refusals = new Map<string, number>();

  constructor(
    private readonly consumer: LogConsumer,
    private readonly store: TelemetryStore,
    private readonly table: TableName,
    private readonly hooks: LoaderHooks = {},
    private readonly opts: LoaderOptions = {},
  ) {
    this.refusedAttempts = Math.max(1, opts.refusedAttempts ?? DEFAULT_REFUSED_ATTEMPTS);
  }

  start(): void {
    if (this.running) return;
    this.running = this.consumer.run((batch) => this.load(batch));
    this.running.catch((e: unknown) => this.hooks.onError?.({ topic: '', partition: -1, messages: [], firstOffset: -1, lastOffset: -1 }, e));
  }

  private async load(batch: MessageBatch): Promise<void> {
    const t0 = performance.now();
    const rows = batchToRows(batch, (off, reason) => this.hooks.onBadMessage?.(batch, off, reason));
    const token = dedupToken(batch);
    const leave = this.opts.gate && rows.length > 0 ? await this.opts.gate.enter(daysOf(rows)) : undefined;
    let refusedRows: number;
    try {
      refusedRows = await this.insertOrSplit(batch, rows, token);
    } finally {
      leave?.();
    }
    this.hooks.onInserted?.(batch, rows.length - refusedRows, performance.now() - t0);
  }

  /** Inserts the batch; returns how many of its rows were refused and dead-lettered instead. */
  private async insertOrSplit(batch: MessageBatch, rows: TelemetryRow[], token: string): Promise<number> {
    try {
      await this.store.insert(this.table, rows, token);
      return 0;
    } catch (e) {
      this.hooks.onError?.(batch, e);
      const dlq = this.opts.deadLetter;
      if (dlq === undefined || insertRefusal(e) === undefined) throw e;
      const attempts = (this.refusals.get(token) ?? 0) + 1;
      if (attempts < this.refusedAttempts) {
        if (this.refusals.size >= MAX_TRACKED_BATCHES) this.refusals.clear();
        this.refusals.set(token, attempts);
        throw e;
      }
      const refused: Array<{ row: TelemetryRow; refusal: InsertRefusal }> = [];
      // The whole batch is known to fail: start from its halves.
      const mid = rows.length >> 1;
      await this.bisect(batch, rows.slice(0, mid), refused);
      await this.bisect(batch, rows.slice(mid), refused);
      const byOffset = new Map(batch.messages.map((m) => [m.offset, m.value]));
      await dlq.producer.send(dlq.topic, refused.map((r) => deadLetterMessage(batch, byOffset.get(r.row.log_offset), r.row, r.refusal)));
      this.refusals.delete(token);
      this.hooks.onDeadLettered?.(batch, refused);
      return refused.length;
    }
  }

  /**
   * Inserts `rows`, halving on a data refusal until the refused rows are alone. Each part's token is
   * its own offset range, so a retry of the whole batch after a transient failure mid-way re-inserts
   * the parts that landed as no-ops. A transient failure is thrown: the consumer retries the batch.
   */
  private async bisect(batch: MessageBatch, rows: TelemetryRow[], refused: Array<{ row: TelemetryRow; refusal: InsertRefusal }>): Promise<void> {
    const first = rows[0];
    const last = rows[rows.length - 1];
    if (first === undefined || last === undefined) return;
    try {
      await this.store.insert(this.table, rows, dedupToken({ topic: batch.topic, partition: batch.partition, firstOffset: first.log_offset, lastOffset: last.log_offset }));
      return;
    } catch (e) {
      const refusal = insertRefusal(e);
      if (refusal === undefined) throw e;
      if (rows.length === 1) {
        refused.push({ row: first, refusal });
        return;
      }
    }
    const mid = rows.length >> 1;
    await this.bisect(batch, rows.slice(0, mid), refused);
    await this.bisect(batch, rows.slice(mid), refused);
  }

  /** Finishes the batch in hand, commits it, stops. Idempotent. */
  async close(): Promise<void> {
    await this.consumer.close();
    await this.running?.catch(() => undefined);
  }
}

/**
 * The dead-letter shape the normalizer writes, so `ingestctl dlq` reads both alike. There is no
 * request here, so `index` carries the entry's log offset (also named in the message).
 */
function deadLetterMessage(batch: MessageBatch, value: Buffer | undefined, row: TelemetryRow, refusal: InsertRefusal): LogMessage {
  const raw = value ? value.toString('utf8') : JSON.stringify(row);
  const letter: DeadLetter = {
    tenant: row.tenant_id,
    index: row.log_offset,
    code: 'INGEST_ERR_STORE_REFUSED',
    message: `ClickHouse refused entry ${row.id} (${batch.topic}/${batch.partition}@${row.log_offset}): ${refusal.type} (code ${refusal.code}): ${refusal.message}`,
    receivedAt: row.received_at,
    raw: raw.length > MAX_DEAD_LETTER_RAW ? raw.slice(0, MAX_DEAD_LETTER_RAW) : raw,
  };
  return { key: row.tenant_id, value: Buffer.from(JSON.stringify(letter)), headers: { [HEADERS.tenant]: row.tenant_id } };
}
