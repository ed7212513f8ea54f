export { TelemetryStore, TABLES } from './store.ts';
export type { TableName, CountQuery, StoreOptions } from './store.ts';
export { toRow } from './rows.ts';
export type { TelemetryRow } from './rows.ts';
export { migrate } from './migrations.ts';
export { ShadowStore, SHADOW_TABLES, NotAShadowTableError, isShadowTable, assertShadowTable, parseDay, formatDay, rowKey } from './shadow.ts';
export type { ShadowTableName, RowKey, DiffRow, DiffQuery, PromotePlan } from './shadow.ts';
export { ReplayRuns } from './replay-runs.ts';
export type { ReplayRunRecord, ReplayRunStatus } from './replay-runs.ts';
