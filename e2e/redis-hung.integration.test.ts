import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { createRateRedis } from '@ingest/edge';
import type { TelemetryStore } from '@ingest/storage';
import { batchOf, postIngest, startInProcessStack, startRedis, waitUntil, type InProcessStack } from '@ingest/testkit';
import { sharedStore, tenantId } from './helpers.ts';

const COMMAND_TIMEOUT_MS = 300;
/** Far above the two Redis calls a request makes before failing, far below "hung". */
const ANSWER_BOUND_MS = 5_000;

/**
 * A Redis that accepts connections but never answers (SIGSTOP: what a stuck or swapping server
 * looks like) must not hang edge requests: with a command timeout they fail closed, 503 with
 * Retry-After, within a bound; after SIGCONT they are served again.
 */
describe('edge with a hung Redis', () => {
  let store: TelemetryStore;
  let redisServer: Awaited<ReturnType<typeof startRedis>>;
  let redis: Redis;
  let stack: InProcessStack;
  let pid: number | undefined;
  let paused = false;

  const resume = () => {
    if (paused && pid !== undefined) process.kill(pid, 'SIGCONT');
    paused = false;
  };

  beforeAll(async () => {
    store = await sharedStore();
    redisServer = await startRedis();
    const port = new URL(redisServer.url).port;
    // deploy/local/redis.sh writes the server's pid here (REDIS_PORT picks the directory).
    pid = Number((await readFile(new URL(`../deploy/local/.run/redis-${port}/redis.pid`, import.meta.url), 'utf8')).trim());
    redis = createRateRedis(redisServer.url, { commandTimeoutMs: COMMAND_TIMEOUT_MS });
    stack = await startInProcessStack({ store, redis });
  });
  afterAll(async () => {
    // Never leave a stopped Redis behind for the next test, whatever failed.
    resume();
    await stack?.close();
    redis?.disconnect();
    await redisServer?.stop();
    await store?.close();
  });

  it('answers 503 INGEST_ERR_DEPENDENCY_UNAVAILABLE with Retry-After within a bound while Redis is paused, and 200 after it resumes', async () => {
    expect(Number.isInteger(pid)).toBe(true);
    const key = await stack.tenant(tenantId('hung-redis'));
    const post = () => postIngest(stack.edgeUrl, key, batchOf(5), { signal: AbortSignal.timeout(ANSWER_BOUND_MS) });
    expect((await post()).status).toBe(200);

    process.kill(pid ?? -1, 'SIGSTOP');
    paused = true;
    try {
      const t0 = performance.now();
      const r = await post();
      const ms = performance.now() - t0;
      expect(r.status).toBe(503);
      expect(r.body.error?.code).toBe('INGEST_ERR_DEPENDENCY_UNAVAILABLE');
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      // Reported so the measured answer time is visible in the test output.
      console.info(`hung Redis: answered ${r.status} in ${Math.round(ms)} ms (command timeout ${COMMAND_TIMEOUT_MS} ms)`);
      const again = await post();
      expect(again.status).toBe(503);
    } finally {
      resume();
    }

    // Back to normal once Redis answers again (stale replies to timed-out commands are discarded).
    await waitUntil('a 200 after Redis resumed', async () => (await post()).status === 200, 10_000, 100);
    expect((await post()).status).toBe(200);
  });
});
