export { startKafka } from './kafka.ts';
export type { KafkaHandle, StartKafkaOptions } from './kafka.ts';
export { startRedis } from './redis.ts';
export type { RedisHandle, StartRedisOptions } from './redis.ts';
export { startInProcessStack, waitLoaded } from './stack.ts';
export type { InProcessStack, InProcessStackOptions } from './stack.ts';
export { postIngest, logEntry, batchOf } from './ingest.ts';
export type { PostResult } from './ingest.ts';
