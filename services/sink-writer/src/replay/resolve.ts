import type { ResolvedPartitionView } from '@ingest/contracts';
import type { LogAdmin, PartitionOffsets, StoredMessage } from '@ingest/log';
import type { ShadowTableName } from '@ingest/storage';
import { ReplayRequestError, type Bound, type EventWindow, type Flag, type ReplayRequest } from './request.ts';

/** One partition's part of a replay (offsets first..last, both inclusive). */
export type ResolvedPartition = ResolvedPartitionView;

export interface ResolvedRange {
  topic: string;
  target: ShadowTableName;
  tenant: string | undefined;
  from: Bound;
  to: Bound;
  /** Always "both": the offset range includes first and last. Time windows are [from, to). */
  inclusive: 'first and last offsets both included';
  partitions: ResolvedPartition[];
  offsets: number;
  /** Only entries with event times in this window are replayed; the others are read and counted. */
  eventWindow?: EventWindow | undefined;
}

type Reader = Pick<LogAdmin, 'partitions' | 'read'>;

/** Below this many offsets a time search reads the span in one go instead of probing. */
const SCAN_SPAN = 2000;

const iso = (ms: number): string => new Date(ms).toISOString();

function retainedText(p: PartitionOffsets): string {
  return p.high > p.low ? `${p.low}..${p.high - 1}` : `empty, next offset ${p.high}`;
}

function retainedList(parts: PartitionOffsets[]): string {
  return parts.map((p) => `partition ${p.partition}: ${retainedText(p)}`).join('; ');
}

async function messageAt(admin: Reader, topic: string, partition: number, offset: number): Promise<StoredMessage | undefined> {
  return (await admin.read(topic, partition, offset, 1))[0];
}

/**
 * The first offset in [low, high) whose log timestamp is >= ms, or `high` when there is none.
 * Log timestamps are append times, non-decreasing per partition, so a binary search finds the
 * boundary; the last stretch is read in one call (cheap on the embedded log, one fetch on Kafka,
 * where every read costs a throwaway group join).
 */
export async function firstAtOrAfter(admin: Reader, topic: string, p: PartitionOffsets, ms: number): Promise<{ offset: number; at: StoredMessage | undefined }> {
  let lo = p.low;
  let hi = p.high;
  let hiMsg: StoredMessage | undefined;
  while (hi - lo > SCAN_SPAN) {
    const mid = lo + Math.floor((hi - lo) / 2);
    const m = await messageAt(admin, topic, p.partition, mid);
    // Nothing at or after mid below hi (a gap): the boundary is below mid.
    if (!m || m.offset >= hi) hi = mid;
    else if (m.timestamp >= ms) {
      hi = m.offset;
      hiMsg = m;
    } else lo = m.offset + 1;
  }
  let at = lo;
  while (at < hi) {
    const got = await admin.read(topic, p.partition, at, hi - at);
    if (got.length === 0) break;
    for (const m of got) {
      if (m.offset >= hi) break;
      if (m.timestamp >= ms) return { offset: m.offset, at: m };
    }
    at = (got[got.length - 1]?.offset ?? at) + 1;
  }
  return { offset: hi, at: hiMsg };
}

function outside(flag: Flag, offset: number, topic: string, p: PartitionOffsets, all: PartitionOffsets[]): ReplayRequestError {
  return new ReplayRequestError(
    `${flag}=${offset} is outside the retained range of ${topic} partition ${p.partition} (${retainedText(p)}). ` +
      `Retained offsets, inclusive: ${retainedList(all)}.` +
      (all.length > 1 ? ' Offsets are per partition: pick the partition with --partition N.' : ''),
  );
}

async function resolveSide(admin: Reader, topic: string, p: PartitionOffsets, all: PartitionOffsets[], b: Bound, flag: Flag): Promise<{ offset: number; note: string }> {
  switch (b.kind) {
    case 'offset':
      if (b.offset < p.low || b.offset >= p.high) throw outside(flag, b.offset, topic, p, all);
      return { offset: b.offset, note: `offset ${b.offset} (as given)` };
    case 'earliest':
      return p.high > p.low ? { offset: p.low, note: `earliest → offset ${p.low} (oldest retained)` } : { offset: p.low, note: 'earliest → partition is empty' };
    case 'latest':
      return p.high > p.low
        ? { offset: p.high - 1, note: `latest → offset ${p.high - 1} (newest when planned; later entries are not included)` }
        : { offset: p.high - 1, note: 'latest → partition is empty' };
    case 'time': {
      if (flag === '--from' && p.low > 0 && p.high > p.low) {
        // Entries before `low` were removed by retention: a window reaching back before the oldest
        // retained entry cannot be replayed completely, and saying so beats a silent partial replay.
        const oldest = await messageAt(admin, topic, p.partition, p.low);
        if (oldest && b.ms < oldest.timestamp) {
          throw new ReplayRequestError(
            `--from=${b.text} is outside the retained range of ${topic} partition ${p.partition}: its oldest retained entry (offset ${p.low}) was logged at ${iso(oldest.timestamp)}, and older entries are gone. ` +
              `Retained offsets, inclusive: ${retainedList(all)}. Use --from=earliest or a later time.`,
          );
        }
      }
      const hit = await firstAtOrAfter(admin, topic, p, b.ms);
      const logged = hit.at ? ` (logged ${iso(hit.at.timestamp)})` : '';
      if (flag === '--from') {
        return hit.offset < p.high
          ? { offset: hit.offset, note: `${b.text} → offset ${hit.offset}, the first entry logged at or after it${logged}` }
          : { offset: p.high, note: `${b.text} → nothing logged at or after it (next offset ${p.high})` };
      }
      // The window is [from, to): the last entry included is the one before the first at or after `to`.
      return hit.offset > p.low
        ? { offset: hit.offset - 1, note: `${b.text} (exclusive) → offset ${hit.offset - 1}, the last entry logged before it` }
        : { offset: p.low - 1, note: `${b.text} (exclusive) → nothing logged before it` };
    }
  }
}

/**
 * A time window that ends before the first entry of every partition with entries is a mistake
 * (a wrong day, local time taken for UTC), not an empty repair: say when the log begins instead
 * of planning nothing and letting the operator believe there was nothing to replay.
 */
async function refuseWindowBeforeLog(admin: Reader, topic: string, req: ReplayRequest, chosen: PartitionOffsets[], parts: ResolvedPartition[], all: PartitionOffsets[]): Promise<void> {
  if (req.to.kind !== 'time') return;
  const nonEmpty = chosen.filter((p) => p.high > p.low);
  if (nonEmpty.length === 0) return;
  const before = nonEmpty.every((p) => parts.find((x) => x.partition === p.partition)?.last === p.low - 1);
  if (!before) return;
  const firsts: string[] = [];
  for (const p of nonEmpty) {
    const m = await messageAt(admin, topic, p.partition, p.low);
    firsts.push(`partition ${p.partition}: offset ${p.low} logged at ${m ? iso(m.timestamp) : 'unknown'}`);
  }
  throw new ReplayRequestError(
    `--to=${req.to.text} is before the first retained entry of ${topic}, so the window holds nothing (${firsts.join('; ')}). ` +
      `Times are log append times in UTC. Retained offsets, inclusive: ${retainedList(all)}.`,
  );
}

/** Turns --from/--to/--partition into exact inclusive offset ranges per partition. */
export async function resolveRange(admin: Reader, topic: string, req: ReplayRequest): Promise<ResolvedRange> {
  const all = await admin.partitions(topic);
  if (all.length === 0) throw new ReplayRequestError(`topic ${topic} has no partitions`);
  let chosen = all;
  if (req.partitions) {
    const unknown = req.partitions.filter((n) => !all.some((p) => p.partition === n));
    if (unknown.length > 0) {
      throw new ReplayRequestError(`unknown partition ${unknown.join(', ')}: ${topic} has partitions ${all.map((p) => p.partition).join(', ')}`);
    }
    chosen = all.filter((p) => req.partitions?.includes(p.partition));
  }
  const partitions: ResolvedPartition[] = [];
  for (const p of chosen) {
    const from = await resolveSide(admin, topic, p, all, req.from, '--from');
    const to = await resolveSide(admin, topic, p, all, req.to, '--to');
    if (from.offset > to.offset && req.from.kind !== 'time' && req.to.kind !== 'time' && p.high > p.low) {
      throw new ReplayRequestError(`--from is after --to in partition ${p.partition}: ${from.note} vs ${to.note}`);
    }
    const empty = from.offset > to.offset;
    partitions.push({
      partition: p.partition,
      retained: { low: p.low, high: p.high },
      first: from.offset,
      last: empty ? from.offset - 1 : to.offset,
      offsets: empty ? 0 : to.offset - from.offset + 1,
      resolution: { from: from.note, to: to.note },
    });
  }
  await refuseWindowBeforeLog(admin, topic, req, chosen, partitions, all);
  return {
    topic,
    target: req.target,
    tenant: req.tenant,
    from: req.from,
    to: req.to,
    inclusive: 'first and last offsets both included',
    partitions,
    offsets: partitions.reduce((a, p) => a + p.offsets, 0),
    ...(req.eventWindow ? { eventWindow: req.eventWindow } : {}),
  };
}
