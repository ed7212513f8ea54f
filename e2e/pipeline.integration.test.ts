import { execFileSync } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DurableLog } from '@ingest/log';
import { decodeRow, type TelemetryStore } from '@ingest/storage';
import { TOPOLOGIES, batchOf, logEntry, postIngest, startInProcessStack, type InProcessStack } from '@ingest/testkit';
import { MODES, modeEnv, readTopic, sharedStore, tenantId, type ModeEnv } from './helpers.ts';

let store: TelemetryStore;
beforeAll(async () => {
  store = await sharedStore();
});
afterAll(async () => {
  await store.close();
});

// Every mode in both topologies: the stages joined in one process, and joined by HTTP.
describe.each(MODES.flatMap((mode) => TOPOLOGIES.map((topology) => [mode, topology] as const)))('pipeline end to end (%s log, %s topology, chDB)', (mode, topology) => {
  let m: ModeEnv;
  let stack: InProcessStack;
  let log: DurableLog;

  beforeAll(async () => {
    m = await modeEnv(mode);
    stack = await startInProcessStack({ env: { ...m.env, EDGE_MAX_DEPTH: '32', EDGE_BODY_LIMIT: '1MiB' }, store, topology });
    log = m.readLog(stack.dataDir);
  });
  afterAll(async () => {
    await log?.close();
    await stack?.close();
    await m?.stop();
  });

  it('10,000 entries for 3 tenants land exactly once in ClickHouse and in the topic; a resend adds nothing', async () => {
    const tenants = [tenantId('a'), tenantId('b'), tenantId('c')];
    const keys = await Promise.all(tenants.map((t) => stack.tenant(t)));
    const batches: Array<{ key: string; tenant: string; entries: Array<Record<string, unknown>> }> = [];
    for (let i = 0; i < 10_000; i += 500) {
      const t = (i / 500) % 3;
      batches.push({ key: keys[t] as string, tenant: tenants[t] as string, entries: batchOf(500, i) });
    }
    const accepted = new Map<string, number>();
    // Four requests in flight at a time: concurrent, but bounded like a real producer.
    for (let i = 0; i < batches.length; i += 4) {
      const res = await Promise.all(batches.slice(i, i + 4).map((b) => postIngest(stack.edgeUrl, b.key, b.entries)));
      res.forEach((r, j) => {
        expect(r.status, JSON.stringify(r.body)).toBe(200);
        const b = batches[i + j];
        if (b) accepted.set(b.tenant, (accepted.get(b.tenant) ?? 0) + (r.body.accepted ?? 0));
      });
    }
    expect([...accepted.values()].reduce((a, b) => a + b, 0)).toBe(10_000);
    await stack.waitLoaded();
    for (const t of tenants) {
      const s = await stack.rowStats(t);
      expect(s.final).toBe(accepted.get(t));
      expect(s.distinctIds).toBe(accepted.get(t));
    }
    const messages = await readTopic(log, stack.config.backends.topic);
    for (const t of tenants) {
      const ids = new Set(messages.filter((x) => x.key === t).map((x) => decodeRow(x.value, x.partition, x.offset).id));
      expect(ids.size).toBe(accepted.get(t));
    }

    for (const b of batches) expect((await postIngest(stack.edgeUrl, b.key, b.entries)).status).toBe(200);
    await stack.waitLoaded();
    for (const t of tenants) {
      const s = await stack.rowStats(t);
      expect(s.final).toBe(accepted.get(t));
      expect(s.distinctIds).toBe(accepted.get(t));
    }
  });

  it('401 for a missing, unknown or revoked key; another tenant named in a header or the body is ignored', async () => {
    const mine = tenantId('mine');
    const victim = tenantId('victim');
    const key = await stack.tenant(mine);
    await stack.tenant(victim);

    const missing = await postIngest(stack.edgeUrl, undefined, [logEntry(1)]);
    expect(missing.status).toBe(401);
    expect(missing.body.error?.code).toBe('INGEST_ERR_UNAUTHENTICATED');
    const unknown = await postIngest(stack.edgeUrl, 'ik_abcdefgh_' + 'x'.repeat(32), [logEntry(1)]);
    expect(unknown.status).toBe(401);
    expect(unknown.body.error?.code).toBe('INGEST_ERR_INVALID_API_KEY');

    const spoof = await postIngest(stack.edgeUrl, key, { tenant: victim, entries: [logEntry(1, { tenant: victim, tenant_id: victim, labels: { tenant: victim } })] }, {
      headers: { 'x-ingest-tenant': victim, 'x-tenant-id': victim, 'x-scope-orgid': victim },
    });
    expect(spoof.status).toBe(200);
    await stack.waitLoaded();
    expect((await stack.rowStats(victim)).final).toBe(0);
    expect((await stack.rowStats(mine)).final).toBe(1);

    const revoked = await stack.tenant(tenantId('gone'));
    const { revokeTenantKey, keyPrefix } = await import('@ingest/tenants');
    const t0 = Date.now();
    const prefix = keyPrefix(revoked) as string;
    const tenantOfKey = Object.entries((await import('@ingest/tenants').then((x) => x.readTenants(stack.config.edge.tenantsFile))).tenants).find(([, r]) => r.keys.some((k) => k.prefix === prefix))?.[0] as string;
    expect(await revokeTenantKey(stack.config.edge.tenantsFile, tenantOfKey, prefix)).toBe(1);
    let status = 0;
    while (Date.now() - t0 < 3000) {
      status = (await postIngest(stack.edgeUrl, revoked, [logEntry(1)])).status;
      if (status === 401) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(status).toBe(401);
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it('a tenant over its entries/s gets 429 with Retry-After while two other tenants keep getting 200', async () => {
    const noisy = await stack.tenant(tenantId('noisy'), { entriesPerSecond: 200 });
    const q1 = await stack.tenant(tenantId('quiet1'));
    const q2 = await stack.tenant(tenantId('quiet2'));
    const noisyStatuses: number[] = [];
    let limited: Awaited<ReturnType<typeof postIngest>> | undefined;
    for (let i = 0; i < 8; i++) {
      const [n, a, b] = await Promise.all([
        postIngest(stack.edgeUrl, noisy, batchOf(100)),
        postIngest(stack.edgeUrl, q1, batchOf(100)),
        postIngest(stack.edgeUrl, q2, batchOf(100)),
      ]);
      noisyStatuses.push(n.status);
      if (n.status === 429) limited = n;
      expect(a.status).toBe(200);
      expect(b.status).toBe(200);
    }
    expect(noisyStatuses).toContain(429);
    expect(limited?.body.error?.code).toBe('INGEST_ERR_TENANT_ENTRY_RATE');
    expect(Number(limited?.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(limited?.headers.get('ratelimit-limit')).toBe('200');
    expect(limited?.headers.get('ratelimit-remaining')).not.toBeNull();
  });

  it('a batch of 100 with 3 invalid entries: 200, 97 accepted, the 3 listed and dead-lettered', async () => {
    const t = tenantId('partial');
    const key = await stack.tenant(t);
    const entries = batchOf(100);
    entries[5] = { type: 'log', timestamp: Date.now(), data: { level: 'loud', message: 'x' } };
    entries[42] = { type: 'metric', timestamp: Date.now(), data: { name: 'cpu', value: 'high' } };
    entries[99] = { type: 'nope', timestamp: Date.now(), data: {} };
    const r = await postIngest(stack.edgeUrl, key, entries);
    expect(r.status).toBe(200);
    expect(r.body.accepted).toBe(97);
    expect(r.body.rejected?.map((x) => x.index)).toEqual([5, 42, 99]);
    for (const x of r.body.rejected ?? []) expect(x.code).toMatch(/^INGEST_ERR_ENTRY_/);
    const dlq = (await readTopic(log, stack.config.backends.dlqTopic)).filter((x) => x.key === t).map((x) => JSON.parse(x.value.toString()) as { index: number; code: string });
    expect(dlq.map((d) => d.index).sort((a, b) => a - b)).toEqual([5, 42, 99]);
    expect(dlq.map((d) => d.code).sort()).toEqual((r.body.rejected ?? []).map((x) => x.code).sort());
    await stack.waitLoaded();
    expect((await stack.rowStats(t)).final).toBe(97);
  });

  it('hostile input gets a 4xx with an INGEST_ERR_ code and the services stay up', async () => {
    const key = await stack.tenant(tenantId('hostile'));
    const limit = stack.config.edge.bodyLimitBytes;
    const bomb = gzipSync(Buffer.alloc(limit * 20, 0x20)); // ~1000:1 of spaces
    const atLimit = '[' + ' '.repeat(limit - 2) + ']';
    expect(Buffer.byteLength(atLimit)).toBe(limit);
    const deep = '['.repeat(10_000) + ']'.repeat(10_000);
    const cases: Array<{ name: string; raw: Buffer | string; headers?: Record<string, string>; status: number; code: string }> = [
      { name: 'broken JSON', raw: '[{"type":"log",', status: 400, code: 'INGEST_ERR_INVALID_JSON' },
      { name: 'wrong content type', raw: 'hello', headers: { 'content-type': 'text/plain' }, status: 415, code: 'INGEST_ERR_UNSUPPORTED_MEDIA_TYPE' },
      { name: 'gzip bomb', raw: bomb, headers: { 'content-encoding': 'gzip' }, status: 413, code: 'INGEST_ERR_BODY_TOO_LARGE' },
      { name: '__proto__', raw: '[{"type":"log","timestamp":1,"data":{"__proto__":{"polluted":true}}}]', status: 400, code: 'INGEST_ERR_FORBIDDEN_KEY' },
      { name: 'constructor.prototype', raw: '[{"constructor":{"prototype":{"x":1}}}]', status: 400, code: 'INGEST_ERR_FORBIDDEN_KEY' },
      { name: '10,000-deep nesting', raw: deep, status: 400, code: 'INGEST_ERR_NESTING_TOO_DEEP' },
      { name: 'one byte over the limit', raw: atLimit + ' ', status: 413, code: 'INGEST_ERR_BODY_TOO_LARGE' },
      { name: 'invalid UTF-8', raw: Buffer.from([0x5b, 0x22, 0xc3, 0x28, 0x22, 0x5d]), status: 400, code: 'INGEST_ERR_INVALID_UTF8' },
      { name: 'corrupt gzip', raw: Buffer.from('not gzip at all'), headers: { 'content-encoding': 'gzip' }, status: 400, code: 'INGEST_ERR_DECOMPRESSION_FAILED' },
      { name: 'unknown encoding', raw: '[]', headers: { 'content-encoding': 'br' }, status: 415, code: 'INGEST_ERR_UNSUPPORTED_ENCODING' },
      { name: 'not an array', raw: '{"type":"log"}', status: 400, code: 'INGEST_ERR_INVALID_BODY' },
      { name: 'empty batch', raw: '[]', status: 400, code: 'INGEST_ERR_EMPTY_BATCH' },
    ];
    for (const c of cases) {
      const r = await postIngest(stack.edgeUrl, key, undefined, { raw: c.raw, ...(c.headers ? { headers: c.headers } : {}) });
      expect({ name: c.name, status: r.status, code: r.body.error?.code }).toEqual({ name: c.name, status: c.status, code: c.code });
      expect(r.body.error?.message.length).toBeGreaterThan(0);
    }
    // Exactly at the limit is fine (and holds no entries, so it is the batch that is refused, not the size).
    expect((await postIngest(stack.edgeUrl, key, undefined, { raw: atLimit })).body.error?.code).toBe('INGEST_ERR_EMPTY_BATCH');
    for (const svc of [stack.edgeUrl, stack.sinkUrl]) expect((await fetch(new URL('/healthz', svc))).status).toBe(200);
    expect((await postIngest(stack.edgeUrl, key, [logEntry(1)])).status).toBe(200);
  });

  it('accepts NDJSON, {"entries": [...]}, gzip and zstd bodies', async () => {
    const key = await stack.tenant(tenantId('formats'));
    const nd = batchOf(3).map((e) => JSON.stringify(e)).join('\n');
    expect((await postIngest(stack.edgeUrl, key, undefined, { raw: nd, headers: { 'content-type': 'application/x-ndjson' } })).body.accepted).toBe(3);
    expect((await postIngest(stack.edgeUrl, key, { entries: batchOf(2) })).body.accepted).toBe(2);
    expect((await postIngest(stack.edgeUrl, key, undefined, { raw: gzipSync(JSON.stringify(batchOf(4))), headers: { 'content-encoding': 'gzip' } })).body.accepted).toBe(4);
    const zst = execFileSync('zstd', ['-c', '-q'], { input: JSON.stringify(batchOf(5)) });
    expect((await postIngest(stack.edgeUrl, key, undefined, { raw: zst, headers: { 'content-encoding': 'zstd' } })).body.accepted).toBe(5);
  });
});
