export { buildSinkWriter } from './app.ts';
export type { SinkWriterOptions, SinkWriterApp } from './app.ts';
export { LogBatcher } from './batch/log-batcher.ts';
export { ClickHouseLoader, dedupToken, batchToRows } from './loader/clickhouse-loader.ts';
