import type { LogAdmin, MessageBatch } from '@ingest/log';
import { rowKey, type RowKey, type ShadowTableName, type TelemetryRow } from '@ingest/storage';
import { batchToRows } from '../loader/clickhouse-loader.ts';
import type { ResolvedRange } from './resolve.ts';

type Reader = Pick<LogAdmin, 'partitions' | 'read'>;

/** One bounded piece of a replay range, decoded by the loader's own transform. */
export interface ScanChunk {
  topic: string;
  partition: number;
  /** Offsets this chunk covers, inclusive: its dedup-token boundaries. */
  firstOffset: number;
  lastOffset: number;
  /** Offsets advanced, for progress. */
  spanned: number;
  /** Messages of the selected tenant (all messages without --tenant). */
  read: number;
  /** Entries read per tenant (by message key, so undecodable ones count too). */
  perTenant: Map<string, number>;
  /** Decoded rows, one per sorting key (a repeat inside the chunk is dropped here and counted). */
  rows: TelemetryRow[];
  /** Decoded entries per tenant, repeats included: what is not inserted of these was a duplicate. */
  decodedPerTenant: Map<string, number>;
  repeats: number;
  /** Decoded entries whose event time is outside the range's event window: read, not replayed. */
  outsideEventWindow: number;
  /** Messages that could not be decoded: never inserted, reported. */
  bad: Array<{ offset: number; reason: string }>;
  /** Log append times of the chunk's first and last message. */
  firstLogTs: number;
  lastLogTs: number;
}

/**
 * Streams a resolved range chunk by chunk with admin().read — which touches no consumer group, so
 * the live loader's committed offsets never move — holding one chunk in memory at a time.
 */
export async function* scanRange(admin: Reader, range: ResolvedRange, opts: { chunk: number; signal?: AbortSignal | undefined }): AsyncGenerator<ScanChunk> {
  const { topic, tenant } = range;
  for (const p of range.partitions) {
    let off = p.first;
    while (off <= p.last) {
      opts.signal?.throwIfAborted();
      const got = await admin.read(topic, p.partition, off, Math.min(opts.chunk, p.last - off + 1));
      const msgs = got.filter((m) => m.offset >= off && m.offset <= p.last);
      const head = msgs[0];
      const tail = msgs[msgs.length - 1];
      if (!head || !tail) {
        // Only gaps (no records) left before the end of the range: done with this partition.
        if ((got[0]?.offset ?? -1) > p.last) break;
        throw new Error(`${topic} partition ${p.partition}: nothing readable at offset ${off} (the range ends at ${p.last}); was the log truncated since the plan?`);
      }
      if (head.offset > off) {
        // A read starts at the oldest retained offset when asked for an older one: make sure the
        // skipped offsets are a gap, not entries retention deleted while we were running.
        const now = (await admin.partitions(topic)).find((x) => x.partition === p.partition);
        if (now && now.low > off) throw new Error(`${topic} partition ${p.partition}: offsets ${off}..${now.low - 1} were removed by retention during the replay`);
      }
      const mine = tenant === undefined ? msgs : msgs.filter((m) => m.key === tenant);
      const perTenant = new Map<string, number>();
      for (const m of mine) perTenant.set(m.key, (perTenant.get(m.key) ?? 0) + 1);
      const bad: ScanChunk['bad'] = [];
      const batch: MessageBatch = { topic, partition: p.partition, messages: mine, firstOffset: off, lastOffset: tail.offset };
      const decoded = batchToRows(batch, (offset, reason) => bad.push({ offset, reason }));
      const seen = new Set<string>();
      const rows: TelemetryRow[] = [];
      const decodedPerTenant = new Map<string, number>();
      let kept = 0;
      let outsideEventWindow = 0;
      const ew = range.eventWindow;
      for (const r of decoded) {
        // Defensive: the key is the tenant by contract, but the row's own tenant is what lands.
        if (tenant !== undefined && r.tenant_id !== tenant) continue;
        // Filtered after decoding, so plan and run see the same entries and the counts add up.
        if (ew && (r.ts < ew.fromMs || r.ts >= ew.toMs)) {
          outsideEventWindow++;
          continue;
        }
        kept++;
        decodedPerTenant.set(r.tenant_id, (decodedPerTenant.get(r.tenant_id) ?? 0) + 1);
        const k = rowKey(r);
        if (seen.has(k)) continue;
        seen.add(k);
        rows.push(r);
      }
      yield {
        topic,
        partition: p.partition,
        firstOffset: off,
        lastOffset: tail.offset,
        spanned: tail.offset - off + 1,
        read: mine.length,
        perTenant,
        rows,
        decodedPerTenant,
        repeats: kept - rows.length,
        outsideEventWindow,
        bad,
        firstLogTs: head.timestamp,
        lastLogTs: tail.timestamp,
      };
      off = tail.offset + 1;
    }
  }
}

/** Anything that can say which rows a shadow table already holds (ShadowStore in production). */
export interface ExistenceLookup {
  existing(table: ShadowTableName, rows: readonly RowKey[]): Promise<Set<string>>;
}

/**
 * Splits a chunk into rows the target lacks and the count skipped as duplicates (already in the
 * target — from an earlier run or an earlier chunk of this one — or repeated inside the chunk).
 * The plan and the run both use this, so the plan's numbers are the run's numbers.
 */
export async function classify(lookup: ExistenceLookup, target: ShadowTableName, chunk: ScanChunk): Promise<{ fresh: TelemetryRow[]; duplicates: number }> {
  if (chunk.rows.length === 0) return { fresh: [], duplicates: chunk.repeats };
  const have = await lookup.existing(target, chunk.rows);
  const fresh = have.size === 0 ? chunk.rows : chunk.rows.filter((r) => !have.has(rowKey(r)));
  return { fresh, duplicates: chunk.repeats + (chunk.rows.length - fresh.length) };
}

/** yyyymmdd (UTC) of an epoch-ms time: the day partition a row lands in. */
export function dayOf(ms: number): number {
  const d = new Date(ms);
  return d.getUTCFullYear() * 10_000 + (d.getUTCMonth() + 1) * 100 + d.getUTCDate();
}

export interface TenantCounts {
  entries: number;
  inserted: number;
  duplicates: number;
}

/** Running totals over chunks; bounded by the number of tenants and days in the range. */
export class Tally {
  entries = 0;
  inserted = 0;
  duplicates = 0;
  undecodable = 0;
  outsideEventWindow = 0;
  readonly tenants = new Map<string, TenantCounts>();
  readonly days = new Map<number, number>();
  readonly badSample: Array<{ partition: number; offset: number; reason: string }> = [];
  firstLogTs: number | undefined;
  lastLogTs: number | undefined;
  minEventTs: number | undefined;
  maxEventTs: number | undefined;

  add(chunk: ScanChunk, fresh: readonly TelemetryRow[], duplicates: number): void {
    this.entries += chunk.read;
    this.inserted += fresh.length;
    this.duplicates += duplicates;
    this.undecodable += chunk.bad.length;
    this.outsideEventWindow += chunk.outsideEventWindow;
    for (const b of chunk.bad) if (this.badSample.length < BAD_SAMPLE) this.badSample.push({ partition: chunk.partition, ...b });
    for (const [t, n] of chunk.perTenant) this.tenant(t).entries += n;
    const freshPerTenant = new Map<string, number>();
    for (const r of fresh) freshPerTenant.set(r.tenant_id, (freshPerTenant.get(r.tenant_id) ?? 0) + 1);
    // Per tenant, a duplicate is an entry decoded but not inserted.
    for (const [t, n] of chunk.decodedPerTenant) {
      const c = this.tenant(t);
      const ins = freshPerTenant.get(t) ?? 0;
      c.inserted += ins;
      c.duplicates += n - ins;
    }
    if (chunk.read > 0) {
      this.firstLogTs = Math.min(this.firstLogTs ?? chunk.firstLogTs, chunk.firstLogTs);
      this.lastLogTs = Math.max(this.lastLogTs ?? chunk.lastLogTs, chunk.lastLogTs);
    }
    for (const r of chunk.rows) {
      if (this.minEventTs === undefined || r.ts < this.minEventTs) this.minEventTs = r.ts;
      if (this.maxEventTs === undefined || r.ts > this.maxEventTs) this.maxEventTs = r.ts;
      const d = dayOf(r.ts);
      this.days.set(d, (this.days.get(d) ?? 0) + 1);
    }
  }

  private tenant(t: string): TenantCounts {
    let c = this.tenants.get(t);
    if (!c) {
      c = { entries: 0, inserted: 0, duplicates: 0 };
      this.tenants.set(t, c);
    }
    return c;
  }
}

const BAD_SAMPLE = 20;

export const isoOrNull = (ms: number | undefined): string | null => (ms === undefined ? null : new Date(ms).toISOString());
