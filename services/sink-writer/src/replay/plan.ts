import type { ReplayPlan as ContractPlan, ReplayPlanPartition } from '@ingest/contracts';
import type { LogAdmin } from '@ingest/log';
import { formatDay, rowKey, type ReplayRunRecord, type ShadowTableName, type TelemetryRow } from '@ingest/storage';
import type { ResolvedRange } from './resolve.ts';
import { classify, isoOrNull, scanRange, Tally, type ExistenceLookup } from './scan.ts';

type Reader = Pick<LogAdmin, 'partitions' | 'read'>;

export type { TimeSpan } from '@ingest/contracts';
export type PlanPartition = ReplayPlanPartition;
export type ReplayPlan = ContractPlan<ShadowTableName>;

export interface PlanDeps {
  admin: Reader;
  lookup: ExistenceLookup;
  previousRuns: (range: ResolvedRange) => Promise<ReplayRunRecord[]>;
}

/** 53-bit FNV-1a pair: a compact stand-in for a key in the plan's memory of recent rows. */
export function keyHash(s: string): number {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ 0x5bd1e995;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193) >>> 0;
    b = Math.imul(b ^ c, 0x5bd1e995) >>> 0;
  }
  return a * 0x200000 + (b & 0x1fffff);
}

/**
 * The rows the plan has counted as "to insert", up to `capacity` keys, oldest chunk dropped first:
 * what the run would have put in the shadow table by the time it reads a chunk.
 */
export class RecentKeys {
  private readonly counts = new Map<number, number>();
  private readonly chunks: number[][] = [];
  private size = 0;
  evicted = false;

  constructor(private readonly capacity: number) {}

  has(k: number): boolean {
    return this.counts.has(k);
  }

  addChunk(keys: number[]): void {
    this.chunks.push(keys);
    this.size += keys.length;
    for (const k of keys) this.counts.set(k, (this.counts.get(k) ?? 0) + 1);
    while (this.size > this.capacity && this.chunks.length > 1) {
      const old = this.chunks.shift() ?? [];
      this.size -= old.length;
      this.evicted = true;
      for (const k of old) {
        const n = (this.counts.get(k) ?? 1) - 1;
        if (n <= 0) this.counts.delete(k);
        else this.counts.set(k, n);
      }
    }
  }
}

/** Keys the plan remembers across chunks (some 15 MB at most). */
const PLAN_MEMORY_KEYS = 250_000;

export interface ScanOptions {
  chunk: number;
  signal?: AbortSignal | undefined;
  /** Offsets covered so far (monotonic), after each chunk. */
  onProgress?: (done: number) => void;
}

export function windowMeaning(range: ResolvedRange): ReplayPlan['window'] {
  const times = range.from.kind === 'time' || range.to.kind === 'time';
  return {
    from: range.from.text,
    to: range.to.text,
    meaning:
      'offsets are per partition and both ends are included' +
      (times ? '; times are log append times, the window is [from, to) and was resolved to offsets per partition as shown' : ''),
  };
}

/**
 * Reads the whole window the way the run will (same chunks, same transform, same duplicate check)
 * and counts, writing nothing. Memory stays at one chunk plus per-tenant and per-day totals.
 */
export async function buildPlan(deps: PlanDeps, range: ResolvedRange, opts: ScanOptions & { memoryKeys?: number }): Promise<ReplayPlan> {
  const total = new Tally();
  const parts: PlanPartition[] = [];
  const recent = new RecentKeys(opts.memoryKeys ?? PLAN_MEMORY_KEYS);
  let done = 0;
  for (const p of range.partitions) {
    const t = new Tally();
    const one: ResolvedRange = { ...range, partitions: [p] };
    for await (const chunk of scanRange(deps.admin, one, opts)) {
      const c = await classify(deps.lookup, range.target, chunk);
      // The run would have inserted an earlier copy of these already: it skips them as duplicates.
      const fresh: TelemetryRow[] = [];
      const keys: number[] = [];
      for (const r of c.fresh) {
        const k = keyHash(rowKey(r));
        if (recent.has(k)) continue;
        fresh.push(r);
        keys.push(k);
      }
      recent.addChunk(keys);
      const duplicates = c.duplicates + (c.fresh.length - fresh.length);
      t.add(chunk, fresh, duplicates);
      total.add(chunk, fresh, duplicates);
      done += chunk.spanned;
      opts.onProgress?.(done);
    }
    parts.push({
      partition: p.partition,
      retained: p.retained,
      firstOffset: p.offsets > 0 ? p.first : null,
      lastOffset: p.offsets > 0 ? p.last : null,
      resolution: p.resolution,
      entries: t.entries,
      toInsert: t.inserted,
      duplicates: t.duplicates,
      undecodable: t.undecodable,
      logTime: { first: isoOrNull(t.firstLogTs), last: isoOrNull(t.lastLogTs) },
    });
  }
  const previousRuns = await deps.previousRuns(range);
  return {
    topic: range.topic,
    target: range.target,
    tenant: range.tenant ?? null,
    window: windowMeaning(range),
    inclusive: range.inclusive,
    partitions: parts,
    entries: total.entries,
    toInsert: total.inserted,
    duplicates: total.duplicates,
    undecodable: total.undecodable,
    eventWindow: range.eventWindow ? { from: range.eventWindow.from, to: range.eventWindow.to } : null,
    inEventWindow: range.eventWindow ? total.entries - total.undecodable - total.outsideEventWindow : null,
    outsideEventWindow: total.outsideEventWindow,
    toInsertExact: !recent.evicted,
    tenants: [...total.tenants]
      .map(([tenant, c]) => ({ tenant, entries: c.entries, toInsert: c.inserted, duplicates: c.duplicates }))
      .sort((a, b) => b.entries - a.entries || a.tenant.localeCompare(b.tenant)),
    logTime: { first: isoOrNull(total.firstLogTs), last: isoOrNull(total.lastLogTs) },
    eventTime: { min: isoOrNull(total.minEventTs), max: isoOrNull(total.maxEventTs) },
    eventDays: [...total.days].sort((a, b) => a[0] - b[0]).map(([d, n]) => ({ day: formatDay(d), entries: n })),
    replayedBefore: previousRuns.length > 0,
    previousRuns,
    writes: 'nothing: this is the plan; run the same command with --yes to replay',
  };
}
