export { buildEdge } from './app.ts';
export type { EdgeOptions } from './app.ts';
export { createRateRedis } from './rate/redis-client.ts';
export type { RateRedisOptions } from './rate/redis-client.ts';
