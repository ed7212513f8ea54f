export { LogUnavailableError } from './types.ts';
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
} from './types.ts';
export { createKafkaLog } from './kafka/index.ts';
