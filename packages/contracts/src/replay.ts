/**
 * JSON shapes of the sink writer's replay admin API (/admin/v1/replay/*), shared by the server
 * (services/sink-writer/src/replay) and its client (ingestctl replay / shadow), so the two cannot
 * drift apart. `Target` is the shadow table's name type on the server and a string on the wire.
 */

export interface TimeSpan {
  first: string | null;
  last: string | null;
}

/** One partition's part of a replay: offsets `first`..`last`, both inclusive (empty when first > last). */
export interface ResolvedPartitionView {
  partition: number;
  /** What the log retains right now: offsets low..high-1. */
  retained: { low: number; high: number };
  first: number;
  last: number;
  /** Offsets in the range (0 when empty). */
  offsets: number;
  /** How --from and --to became `first` and `last`, in words. */
  resolution: { from: string; to: string };
}

/** An earlier run overlapping the planned range, as the plan lists it. */
export interface ReplayRunView {
  runId: string;
  partition: number;
  firstOffset: number;
  lastOffset: number;
  status: 'running' | 'done' | 'failed' | 'cancelled';
  who: string;
  /** epoch ms */
  startedAt: number;
  /** '' when the run was not limited to one tenant. */
  tenant: string;
  inserted: number;
}

export interface ReplayPlanPartition {
  partition: number;
  retained: { low: number; high: number };
  firstOffset: number | null;
  lastOffset: number | null;
  resolution: { from: string; to: string };
  entries: number;
  toInsert: number;
  duplicates: number;
  undecodable: number;
  logTime: TimeSpan;
}

export interface ReplayPlan<Target extends string = string> {
  topic: string;
  target: Target;
  tenant: string | null;
  window: { from: string; to: string; meaning: string };
  inclusive: string;
  partitions: ReplayPlanPartition[];
  /** Log entries in the window (of --tenant, when given). */
  entries: number;
  /** Entries the run would insert: not in the target yet, decodable, first of their key. */
  toInsert: number;
  /** Entries the target already holds (or repeated in the window): skipped by the run. */
  duplicates: number;
  /** Entries that cannot be decoded: the run skips and reports them. */
  undecodable: number;
  /** --event-from/--event-to, when given: only entries with event times in [from, to) are replayed. */
  eventWindow: { from: string; to: string } | null;
  /** Decodable entries of the scanned range in the event window (null without one); toInsert + duplicates of them. */
  inEventWindow: number | null;
  /** Decoded entries outside the event window: read, never inserted. entries = inEventWindow + outsideEventWindow + undecodable. */
  outsideEventWindow: number;
  /**
   * True when toInsert is exact. The run finds every repeat of an entry (it checks the shadow after
   * inserting earlier chunks); the plan writes nothing, so it remembers recent keys only, and a
   * repeat further back than that is counted as to insert (the run then skips it).
   */
  toInsertExact: boolean;
  tenants: Array<{ tenant: string; entries: number; toInsert: number; duplicates: number }>;
  logTime: TimeSpan;
  /** Event times (the `ts` column) the window's entries carry. */
  eventTime: { min: string | null; max: string | null };
  eventDays: Array<{ day: string; entries: number }>;
  replayedBefore: boolean;
  previousRuns: ReplayRunView[];
  writes: string;
}

export type ReplayStatus = 'done' | 'failed' | 'cancelled';

export interface ReplaySummary<Target extends string = string> {
  runId: string;
  status: ReplayStatus;
  error?: string;
  topic: string;
  target: Target;
  tenant: string | null;
  /** doneThrough: the last offset fully processed (null: none); a stopped run ends short of lastOffset. */
  partitions: Array<{ partition: number; firstOffset: number | null; lastOffset: number | null; doneThrough: number | null; read: number; inserted: number; skippedDuplicates: number; deadLettered: number }>;
  read: number;
  inserted: number;
  skippedDuplicates: number;
  /** Undecodable entries: not inserted; sample below and in the audit log. */
  deadLettered: number;
  /** Entries read whose event time is outside --event-from/--event-to: not inserted (0 without a window). */
  outsideEventWindow: number;
  eventWindow?: { from: string; to: string } | null;
  deadLetterSample: Array<{ partition: number; offset: number; reason: string }>;
  tenants: Array<{ tenant: string; read: number; inserted: number; skippedDuplicates: number }>;
  logTime: TimeSpan;
  eventDays: Array<{ day: string; entries: number }>;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  /** Where the audit record went (filled in by the route that ran the job). */
  audit?: { file: string; topic?: string; written: { file: boolean; topic?: boolean } };
}

export interface ReplayJobProgress {
  /** Offsets covered so far. */
  done: number;
  total: number;
  startedAt: string;
  /** Offsets per second since the start. */
  rate: number;
}

/** What the resolved range looks like on the wire (the server's carries more detail). */
export interface ResolvedRangeView<Target extends string = string> {
  topic: string;
  target: Target;
  inclusive: string;
  offsets: number;
  partitions: ResolvedPartitionView[];
}

export interface ReplayJobView<Target extends string = string, Resolved extends ResolvedRangeView<Target> = ResolvedRangeView<Target>> {
  id: string;
  kind: 'plan' | 'run';
  state: 'running' | 'done' | 'failed' | 'cancelled';
  who: string;
  progress: ReplayJobProgress;
  totals?: { read: number; inserted: number; skippedDuplicates: number; deadLettered: number };
  resolved: Resolved;
  plan?: ReplayPlan<Target>;
  summary?: ReplaySummary<Target>;
  error?: string;
  finishedAt?: string;
}
