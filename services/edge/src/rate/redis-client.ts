import { Redis } from 'ioredis';

export interface RateRedisOptions {
  /**
   * Bound on every Redis command (rate buckets and @fastify/rate-limit's counter). A hung Redis (a
   * paused process, a half-open connection) then fails each call after this long instead of
   * holding the request forever; the edge answers 503 INGEST_ERR_DEPENDENCY_UNAVAILABLE.
   */
  commandTimeoutMs: number;
}

/**
 * The edge's Redis client, configured so no request waits on Redis longer than the command bound:
 * - commandTimeout: a sent command that gets no reply rejects (ioredis has no default bound);
 * - enableOfflineQueue false: while disconnected, commands fail at once instead of piling up in
 *   an unbounded queue to be replayed (and timed out) later;
 * - maxRetriesPerRequest 0: a command interrupted by a reconnect fails instead of being retried
 *   behind the caller's back; the producer's retry (Retry-After) is the retry;
 * - connectTimeout: a SYN that is never answered does not leave the client "connecting" forever.
 */
export function createRateRedis(url: string, opts: RateRedisOptions): Redis {
  return new Redis(url, {
    commandTimeout: opts.commandTimeoutMs,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: Math.max(1000, opts.commandTimeoutMs * 4),
  });
}
