export { buildSinkWriter } from './app.ts';
export type { SinkWriterOptions } from './app.ts';
export { LogBatcher } from './batch/log-batcher.ts';
export { ClickHouseLoader, dedupToken, batchToRows } from './loader/clickhouse-loader.ts';
