export { TelemetryStore, TABLES } from './store.ts';
export type { TableName, CountQuery, StoreOptions } from './store.ts';
export { toRow } from './rows.ts';
export type { TelemetryRow } from './rows.ts';
export { migrate } from './migrations.ts';
