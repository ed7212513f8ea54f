export { createKafkaLog } from './kafka-log.ts';
export type { KafkaCompression, KafkaLogOptions } from './options.ts';
export type { LogSink, KafkaLogLevel } from './logging.ts';
