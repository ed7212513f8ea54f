import { setTimeout as sleep } from 'node:timers/promises';
import type { ReplaySummary as ContractSummary, ReplayStatus } from '@ingest/contracts';
import type { LogAdmin } from '@ingest/log';
import { backoffMs } from '@ingest/queue';
import { assertShadowTable, formatDay, type ShadowTableName, type TelemetryRow } from '@ingest/storage';
import { dedupToken } from '../loader/clickhouse-loader.ts';
import type { ScanOptions } from './plan.ts';
import type { ResolvedRange } from './resolve.ts';
import { classify, isoOrNull, scanRange, Tally, type ExistenceLookup } from './scan.ts';

type Reader = Pick<LogAdmin, 'partitions' | 'read'>;

/** Where a replay may write: typed to shadow tables only, so the live table can't be passed. */
export interface ShadowWriter {
  insert(table: ShadowTableName, rows: TelemetryRow[], dedupToken: string): Promise<void>;
}

export interface ExecuteDeps {
  admin: Reader;
  lookup: ExistenceLookup;
  writer: ShadowWriter;
}

export interface ExecuteOptions extends ScanOptions {
  runId: string;
  /** Attempts per chunk insert before the run fails (default 5). */
  insertAttempts?: number;
  /** First retry delay, doubled per attempt up to 10 s (default 200 ms). */
  retryDelayMs?: number;
  onRetry?: (info: { partition: number; firstOffset: number; attempt: number; error: string }) => void;
  /** Called with the running totals after each chunk (for the job view). */
  onTotals?: (t: { read: number; inserted: number; skippedDuplicates: number; deadLettered: number }) => void;
}

export type { ReplayStatus };
export type ReplaySummary = ContractSummary<ShadowTableName>;


/**
 * The dedup token of one replay chunk: the loader's scheme (log range) scoped by the run id.
 * - A retry inside a run re-sends the identical block with the identical token → dropped by
 *   ClickHouse if the first attempt landed (unknown outcome after ECONNRESET), inserted if not.
 * - A later run has another id, so block hashes ClickHouse keeps after ALTER … DELETE / TRUNCATE
 *   never swallow a fresh replay into a cleaned shadow table.
 * - "Replayed twice inserts nothing" is carried by the existence check on the row key, not by
 *   the token: the second run finds every row and sends no block at all.
 */
export function replayToken(runId: string, chunk: { topic: string; partition: number; firstOffset: number; lastOffset: number }): string {
  return dedupToken(chunk, `replay-${runId}`);
}

/** Caps the doubling, so a run given many insertAttempts does not wait hours between the last ones. */
const MAX_RETRY_DELAY_MS = 10_000;

async function insertWithRetry(deps: ExecuteDeps, target: ShadowTableName, rows: TelemetryRow[], token: string, opts: ExecuteOptions, where: { partition: number; firstOffset: number }): Promise<void> {
  const attempts = opts.insertAttempts ?? 5;
  const base = opts.retryDelayMs ?? 200;
  for (let attempt = 1; ; attempt++) {
    try {
      await deps.writer.insert(target, rows, token);
      return;
    } catch (e) {
      if (attempt >= attempts || opts.signal?.aborted) throw e;
      opts.onRetry?.({ ...where, attempt, error: (e as Error).message });
      // One replay job retries its own insert: no herd to spread, so no jitter.
      const wait = backoffMs(attempt, { initialMs: base, maxMs: MAX_RETRY_DELAY_MS, jitter: 'none' });
      await sleep(wait, undefined, opts.signal ? { signal: opts.signal } : undefined);
    }
  }
}

/**
 * Replays a resolved range into its shadow table. Per chunk: read (admin().read, no consumer
 * group), decode with the loader's batchToRows, drop rows the target already holds, insert the rest
 * in one block with the run-scoped token. Counts are exact: inserted + skippedDuplicates +
 * deadLettered + outsideEventWindow = read.
 */
export async function executeReplay(deps: ExecuteDeps, range: ResolvedRange, opts: ExecuteOptions): Promise<ReplaySummary> {
  assertShadowTable(range.target);
  const started = Date.now();
  const total = new Tally();
  const perPartition = new Map<number, Tally>();
  const through = new Map<number, number>();
  let done = 0;
  let status: ReplayStatus = 'done';
  let error: string | undefined;
  const totals = () => ({ read: total.entries, inserted: total.inserted, skippedDuplicates: total.duplicates, deadLettered: total.undecodable, outsideEventWindow: total.outsideEventWindow });
  try {
    for await (const chunk of scanRange(deps.admin, range, opts)) {
      const { fresh, duplicates } = await classify(deps.lookup, range.target, chunk);
      if (fresh.length > 0) {
        await insertWithRetry(deps, range.target, fresh, replayToken(opts.runId, chunk), opts, { partition: chunk.partition, firstOffset: chunk.firstOffset });
      }
      // Counted only once the block is in: a failed run's summary says what really landed.
      total.add(chunk, fresh, duplicates);
      let pt = perPartition.get(chunk.partition);
      if (!pt) {
        pt = new Tally();
        perPartition.set(chunk.partition, pt);
      }
      pt.add(chunk, fresh, duplicates);
      through.set(chunk.partition, chunk.lastOffset);
      done += chunk.spanned;
      opts.onProgress?.(done);
      opts.onTotals?.(totals());
    }
  } catch (e) {
    status = opts.signal?.aborted ? 'cancelled' : 'failed';
    error = opts.signal?.aborted ? 'cancelled by request; what was inserted so far stays (a re-run skips it)' : (e as Error).message;
  }
  const finished = Date.now();
  return {
    runId: opts.runId,
    status,
    ...(error !== undefined ? { error } : {}),
    topic: range.topic,
    target: range.target,
    tenant: range.tenant ?? null,
    partitions: range.partitions.map((p) => {
      const t = perPartition.get(p.partition);
      return {
        partition: p.partition,
        firstOffset: p.offsets > 0 ? p.first : null,
        lastOffset: p.offsets > 0 ? p.last : null,
        doneThrough: through.get(p.partition) ?? null,
        read: t?.entries ?? 0,
        inserted: t?.inserted ?? 0,
        skippedDuplicates: t?.duplicates ?? 0,
        deadLettered: t?.undecodable ?? 0,
      };
    }),
    ...totals(),
    eventWindow: range.eventWindow ? { from: range.eventWindow.from, to: range.eventWindow.to } : null,
    deadLetterSample: total.badSample,
    tenants: [...total.tenants]
      .map(([tenant, c]) => ({ tenant, read: c.entries, inserted: c.inserted, skippedDuplicates: c.duplicates }))
      .sort((a, b) => b.read - a.read || a.tenant.localeCompare(b.tenant)),
    logTime: { first: isoOrNull(total.firstLogTs), last: isoOrNull(total.lastLogTs) },
    eventDays: [...total.days].sort((a, b) => a[0] - b[0]).map(([d, n]) => ({ day: formatDay(d), entries: n })),
    startedAt: new Date(started).toISOString(),
    finishedAt: new Date(finished).toISOString(),
    durationMs: finished - started,
  };
}
