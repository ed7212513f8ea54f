import type { DeadLetter, NormalizedEntry } from '@ingest/contracts';
import { HEADERS } from '@ingest/contracts';
import type { LogConsumer, LogMessage, LogProducer, MessageBatch } from '@ingest/log';
import { decodeRow, encodeRow, encodedRowTs, positionTail, positionedBody, insertRefusal, isEncodedRow, type InsertRefusal, type TableName, type TelemetryRow, type TelemetryStore } from '@ingest/storage';
import { daysOf, type DayGate } from './day-gate.ts';

/**
 * The dedup token of a block: the log range it came from, and the append times of its first and
 * last message. A retry of the same range (after a failed or unknown-outcome insert) carries the
 * same token and is dropped by ClickHouse; a re-read with other boundaries is still collapsed by
 * the table's (tenant, id) key. The times tell apart two logs that reuse offsets (a topic deleted
 * and created again, an embedded log started afresh beside a kept store), whose blocks would
 * otherwise share tokens and be dropped as retries.
 */
export function dedupToken(batch: Pick<MessageBatch, 'topic' | 'partition' | 'firstOffset' | 'lastOffset'> & { firstTs?: number; lastTs?: number }, scope = 'live'): string {
  const times = batch.firstTs === undefined ? '' : `@${batch.firstTs}-${batch.lastTs ?? batch.firstTs}`;
  return `${scope}:${batch.topic}:${batch.partition}:${batch.firstOffset}-${batch.lastOffset}${times}`;
}

/**
 * A log message as the table's row bytes. Current messages are already rows (the normalizer made
 * them once); a message written by an older version (a NormalizedEntry document) is encoded here.
 */
function rowBytes(value: Buffer): Buffer {
  if (isEncodedRow(value)) return value;
  return Buffer.from(encodeRow(JSON.parse(value.toString('utf8')) as NormalizedEntry));
}

/** Decodes a log batch into rows (replay needs their fields); a message that can't be decoded is reported, never inserted. */
export function batchToRows(batch: MessageBatch, onBad: (offset: number, reason: string) => void): TelemetryRow[] {
  const rows: TelemetryRow[] = [];
  for (const m of batch.messages) {
    try {
      rows.push(decodeRow(rowBytes(m.value), m.partition, m.offset));
    } catch (err) {
      onBad(m.offset, (err as Error).message);
    }
  }
  return rows;
}

/** One message of a batch, ready to insert: its row bytes with the log position appended. */
interface EncodedRow {
  offset: number;
  /** Append time in the log: part of the dedup token. */
  appendedAt: number;
  key: string;
  value: Buffer;
  ts: number;
  /** The row bytes, and what the insert body appends for the log position (see positionedBody). */
  row: Buffer;
  tail: string;
}

/** A log batch as insert bodies, without parsing the rows: only the event time is read, from its fixed place. */
export function encodeBatch(batch: MessageBatch, onBad: (offset: number, reason: string) => void): EncodedRow[] {
  const out: EncodedRow[] = [];
  for (const m of batch.messages) {
    try {
      const row = rowBytes(m.value);
      const ts = encodedRowTs(row);
      if (Number.isNaN(ts)) throw new Error('row has no event time where the format puts it');
      out.push({ offset: m.offset, appendedAt: m.timestamp, key: m.key, value: m.value, ts, row, tail: positionTail(m.partition, m.offset) });
    } catch (err) {
      onBad(m.offset, (err as Error).message);
    }
  }
  return out;
}

function tokenOf(topic: string, partition: number, rows: ReadonlyArray<EncodedRow>): string {
  const first = rows[0];
  const last = rows[rows.length - 1];
  if (first === undefined || last === undefined) return dedupToken({ topic, partition, firstOffset: -1, lastOffset: -1 });
  return dedupToken({ topic, partition, firstOffset: first.offset, lastOffset: last.offset, firstTs: first.appendedAt, lastTs: last.appendedAt });
}

export interface LoaderHooks {
  onInserted?: (batch: MessageBatch, rows: number, ms: number) => void;
  onError?: (batch: MessageBatch, err: unknown) => void;
  onBadMessage?: (batch: MessageBatch, offset: number, reason: string) => void;
  /** Rows of `batch` ClickHouse refused for their data, sent to the dead-letter topic. */
  onDeadLettered?: (batch: MessageBatch, refused: ReadonlyArray<{ offset: number; refusal: InsertRefusal }>) => void;
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
    const rows = encodeBatch(batch, (off, reason) => this.hooks.onBadMessage?.(batch, off, reason));
    const token = tokenOf(batch.topic, batch.partition, rows);
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
  private async insertOrSplit(batch: MessageBatch, rows: EncodedRow[], token: string): Promise<number> {
    try {
      await this.store.insertEncoded(this.table, positionedBody(rows), token);
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
      const refused: Array<{ row: EncodedRow; refusal: InsertRefusal }> = [];
      // The whole batch is known to fail: start from its halves.
      const mid = rows.length >> 1;
      await this.bisect(batch, rows.slice(0, mid), refused);
      await this.bisect(batch, rows.slice(mid), refused);
      await dlq.producer.send(dlq.topic, refused.map((r) => deadLetterMessage(batch, r.row, r.refusal)));
      this.refusals.delete(token);
      this.hooks.onDeadLettered?.(batch, refused.map((r) => ({ offset: r.row.offset, refusal: r.refusal })));
      return refused.length;
    }
  }

  /**
   * Inserts `rows`, halving on a data refusal until the refused rows are alone. Each part's token is
   * its own offset range, so a retry of the whole batch after a transient failure mid-way re-inserts
   * the parts that landed as no-ops. A transient failure is thrown: the consumer retries the batch.
   */
  private async bisect(batch: MessageBatch, rows: EncodedRow[], refused: Array<{ row: EncodedRow; refusal: InsertRefusal }>): Promise<void> {
    const first = rows[0];
    const last = rows[rows.length - 1];
    if (first === undefined || last === undefined) return;
    try {
      await this.store.insertEncoded(this.table, positionedBody(rows), tokenOf(batch.topic, batch.partition, rows));
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
 * request here, so `index` carries the entry's log offset (also named in the message). The row
 * is decoded only to name it; a row too damaged to decode is still dead-lettered, by its offset.
 */
function deadLetterMessage(batch: MessageBatch, row: EncodedRow, refusal: InsertRefusal): LogMessage {
  // The row by its column names when it decodes (a reader needs no column list); its bytes otherwise.
  let raw = row.value.toString('utf8');
  let id = `at offset ${row.offset}`;
  let receivedAt = 0;
  try {
    const decoded = decodeRow(rowBytes(row.value), batch.partition, row.offset);
    id = decoded.id;
    receivedAt = decoded.received_at;
    raw = JSON.stringify(decoded);
  } catch {
    // named by its offset, kept as bytes
  }
  const letter: DeadLetter = {
    tenant: row.key,
    index: row.offset,
    code: 'INGEST_ERR_STORE_REFUSED',
    message: `ClickHouse refused entry ${id} (${batch.topic}/${batch.partition}@${row.offset}): ${refusal.type} (code ${refusal.code}): ${refusal.message}`,
    receivedAt,
    raw: raw.length > MAX_DEAD_LETTER_RAW ? raw.slice(0, MAX_DEAD_LETTER_RAW) : raw,
  };
  return { key: row.key, value: Buffer.from(JSON.stringify(letter)), headers: { [HEADERS.tenant]: row.key } };
}
