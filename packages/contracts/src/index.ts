export { ERROR_CATALOG, IngestError, ingestError, isErrorCode } from './errors.ts';
export type { CatalogEntry, ErrorCode, EntryErrorCode, ErrorBody } from './errors.ts';
export { ENTRY_TYPES, DEFAULT_TIME_WINDOW } from './entry.ts';
export type { EntryType, WireEntry, NormalizedEntry, EntryRejection, DeadLetter, IngestResult } from './entry.ts';
export { ROUTES, HEADERS, INGEST_VERSIONS } from './internal.ts';
export type { NormalizeRequest, RefusedItem, WriteBatch, WriteResult, HopMeta, NormalizeHop, WriteHop, QueryRequest, QueryPage, RollupPage, CountBucket, MetricBucket, QueryHop, StoredEntry } from './internal.ts';
export { TOPICS } from './topics.ts';
export type {
  TimeSpan,
  ResolvedPartitionView,
  ReplayRunView,
  ReplayPlanPartition,
  ReplayPlan,
  ReplayStatus,
  ReplaySummary,
  ReplayJobProgress,
  ResolvedRangeView,
  ReplayJobView,
} from './replay.ts';
