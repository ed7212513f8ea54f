import type { NormalizedEntry } from '@ingest/contracts';
import type { LogConsumer, MessageBatch } from '@ingest/log';
import { toRow, type TableName, type TelemetryRow, type TelemetryStore } from '@ingest/storage';

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
}

/**
 * Log → ClickHouse. The consumer commits a batch's offsets only after its insert resolved, so a
 * crash between the two re-inserts that range (deduplicated), and never skips it.
 */
export class ClickHouseLoader {
  private running: Promise<void> | undefined;

  constructor(
    private readonly consumer: LogConsumer,
    private readonly store: TelemetryStore,
    private readonly table: TableName,
    private readonly hooks: LoaderHooks = {},
  ) {}

  start(): void {
    if (this.running) return;
    this.running = this.consumer.run(async (batch) => {
      const t0 = performance.now();
      const rows = batchToRows(batch, (off, reason) => this.hooks.onBadMessage?.(batch, off, reason));
      try {
        await this.store.insert(this.table, rows, dedupToken(batch));
      } catch (e) {
        this.hooks.onError?.(batch, e);
        throw e;
      }
      this.hooks.onInserted?.(batch, rows.length, performance.now() - t0);
    });
    this.running.catch((e: unknown) => this.hooks.onError?.({ topic: '', partition: -1, messages: [], firstOffset: -1, lastOffset: -1 }, e));
  }

  /** Finishes the batch in hand, commits it, stops. Idempotent. */
  async close(): Promise<void> {
    await this.consumer.close();
    await this.running?.catch(() => undefined);
  }
}
