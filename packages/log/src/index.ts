export { LogRecordTooLargeError, LogUnavailableError } from './types.ts';
export type {
  LogMessage,
  StoredMessage,
  AppendedRange,
  PartitionOffsets,
  MessageBatch,
  LogProducer,
  ConsumerOptions,
  BatchHandler,
  LogConsumer,
  LogAdmin,
  DurableLog,
  LogHealth,
} from './types.ts';
export { createKafkaLog } from './kafka/index.ts';
export { createEmbeddedLog, type CorruptRecordInfo, type EmbeddedLog, type EmbeddedLogOptions } from './embedded/index.ts';
export { openLog } from './open.ts';
export type { OpenLogOptions } from './open.ts';
