import type { Redis } from 'ioredis';
import type { RateStore, TakeResult } from './rate-store.ts';

/**
 * The same bucket arithmetic as MemoryRateStore, run atomically in Redis so every edge replica
 * draws from one bucket per tenant. Redis's own clock is used, so replica clock skew can't mint
 * tokens. Keys expire once a bucket would be full again.
 */
const SCRIPT = `
local key = KEYS[1]
local amount = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local s = redis.call('HMGET', key, 'tokens', 'at')
local tokens = tonumber(s[1])
local at = tonumber(s[2])
if tokens == nil then
  tokens = burst
  at = now
else
  tokens = math.min(burst, tokens + ((now - at) / 1000) * rate)
end
local need = math.min(amount, burst)
local ok = 0
local retry = 0
if tokens >= need then
  tokens = tokens - amount
  ok = 1
else
  retry = math.ceil(((need - tokens) / rate) * 1000)
end
redis.call('HSET', key, 'tokens', tostring(tokens), 'at', tostring(now))
local ttl = math.ceil(((burst - tokens) / rate) * 1000) + 1000
redis.call('PEXPIRE', key, ttl)
return {ok, math.floor(math.max(tokens, 0)), retry}
`;

export class RedisRateStore implements RateStore {
  constructor(private readonly redis: Redis, private readonly prefix = 'ingest:rate:') {
    redis.defineCommand('ingestTake', { numberOfKeys: 1, lua: SCRIPT });
  }

  async take(key: string, amount: number, ratePerSec: number, burst: number): Promise<TakeResult> {
    const cmd = (this.redis as unknown as { ingestTake: (k: string, a: number, r: number, b: number) => Promise<[number, number, number]> }).ingestTake;
    const [ok, remaining, retry] = await cmd.call(this.redis, this.prefix + key, amount, ratePerSec, burst);
    return { ok: ok === 1, remaining, retryAfterMs: retry };
  }

  async close(): Promise<void> {
    // The Redis connection is owned by whoever created it (shared with @fastify/rate-limit).
  }
}
