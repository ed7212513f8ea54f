import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import type { FastifyInstance } from 'fastify';
import { buildEdge } from '@ingest/edge';
import type { TelemetryStore } from '@ingest/storage';
import { batchOf, postIngest, startInProcessStack, startRedis, waitForKey, type InProcessStack } from '@ingest/testkit';
import { sharedStore, tenantId } from './helpers.ts';

// Two edge replicas behind one load balancer must enforce one limit per tenant, not one each.
describe('rate limits shared by edge replicas through real Redis', () => {
  let store: TelemetryStore;
  let redisServer: Awaited<ReturnType<typeof startRedis>>;
  let redisA: Redis;
  let redisB: Redis;
  let stack: InProcessStack;
  let edgeB: FastifyInstance;
  let edgeBUrl: string;

  beforeAll(async () => {
    store = await sharedStore();
    redisServer = await startRedis();
    redisA = new Redis(redisServer.url);
    redisB = new Redis(redisServer.url);
    stack = await startInProcessStack({ store, redis: redisA });
    edgeB = await buildEdge({ config: stack.config.edge, redis: redisB, logger: false, tenantsReloadMs: 200 });
    edgeBUrl = await edgeB.listen({ host: '127.0.0.1', port: 0 });
  });
  afterAll(async () => {
    await edgeB?.close();
    await stack?.close();
    redisA?.disconnect();
    redisB?.disconnect();
    await redisServer?.stop();
    await store?.close();
  });

  it('entries/s: what one replica spent, the other cannot spend again', async () => {
    const key = await stack.tenant(tenantId('shared'), { entriesPerSecond: 300 });
    await waitForKey(edgeB, key, 'edge B');
    // A spends the whole second's worth, so B would need a full second of refill to pass.
    const a = await postIngest(stack.edgeUrl, key, batchOf(300));
    const b = await postIngest(edgeBUrl, key, batchOf(300));
    expect(a.status).toBe(200);
    expect(b.status).toBe(429);
    expect(b.body.error?.code).toBe('INGEST_ERR_TENANT_ENTRY_RATE');
  });

  it('requests/s through @fastify/rate-limit with the Redis store', async () => {
    const key = await stack.tenant(tenantId('rps'), { requestsPerSecond: 2, entriesPerSecond: 100_000 });
    await waitForKey(edgeB, key, 'edge B');
    const statuses: number[] = [];
    for (const url of [stack.edgeUrl, edgeBUrl, stack.edgeUrl, edgeBUrl]) statuses.push((await postIngest(url, key, batchOf(1))).status);
    expect(statuses.filter((s) => s === 200).length).toBeLessThanOrEqual(2);
    expect(statuses).toContain(429);
  });
});
