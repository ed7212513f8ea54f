import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoredEntry } from '@ingest/contracts';
import type { TelemetryStore } from '@ingest/storage';
import { TOPOLOGIES, postIngest, startInProcessStack, type InProcessStack } from '@ingest/testkit';
import { sharedStore, tenantId } from './helpers.ts';

interface Page {
  entries: StoredEntry[];
  next: string | null;
}

async function get(edgeUrl: string, key: string, params: Array<[string, string]>, accept?: string): Promise<{ status: number; body: unknown; text: string; headers: Headers }> {
  const u = new URL('/v2/query', edgeUrl);
  for (const [k, v] of params) u.searchParams.append(k, v);
  const res = await fetch(u, { headers: { authorization: `Bearer ${key}`, ...(accept ? { accept } : {}) } });
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: res.status, body, text, headers: res.headers };
}

async function page(edgeUrl: string, key: string, params: Array<[string, string]>): Promise<Page> {
  const r = await get(edgeUrl, key, params);
  expect(r.status, r.text).toBe(200);
  return r.body as Page;
}

/** Every page of a query, following `next`; bounded so a cursor that never ends fails the test. */
async function allPages(edgeUrl: string, key: string, params: Array<[string, string]>): Promise<StoredEntry[]> {
  const out: StoredEntry[] = [];
  let cursor: string | null = null;
  for (let i = 0; i < 100; i++) {
    const p = await page(edgeUrl, key, cursor ? [...params, ['cursor', cursor]] : params);
    out.push(...p.entries);
    cursor = p.next;
    if (cursor === null) return out;
  }
  throw new Error('more than 100 pages');
}

const ids = (es: StoredEntry[]) => es.map((e) => e.id);

let store: TelemetryStore;
beforeAll(async () => {
  store = await sharedStore();
});
afterAll(async () => {
  await store.close();
});

describe.each(TOPOLOGIES)('GET /v2/query (%s topology, chDB)', (topology) => {
  let stack: InProcessStack;
  const a = tenantId('qa');
  const b = tenantId('qb');
  let keyA = '';
  let keyB = '';
  /** What each tenant sent, newest first (timestamps are distinct, one second apart). */
  const sent: Record<string, Array<Record<string, unknown>>> = {};
  const base = Date.now() - 3_600_000;

  function entriesFor(tenant: string, tag: string): Array<Record<string, unknown>> {
    const out: Array<Record<string, unknown>> = [];
    for (let i = 0; i < 30; i++) {
      const ts = base + i * 1000;
      const labels = { env: i % 2 === 0 ? 'prod' : 'dev', zone: `z${i % 3}`, owner: tenant };
      if (i % 3 === 0) out.push({ id: `${tag}-m-${i}`, type: 'metric', timestamp: ts, app: i % 2 === 0 ? 'api' : 'web', data: { name: i % 2 === 0 ? 'cpu' : 'mem', value: i, unit: 'ratio' }, labels });
      else out.push({ id: `${tag}-l-${i}`, type: 'log', timestamp: ts, app: i % 2 === 0 ? 'api' : 'web', data: { level: i % 4 === 1 ? 'error' : 'info', message: `${tag} request ${i} done` }, labels });
    }
    return out;
  }

  beforeAll(async () => {
    stack = await startInProcessStack({ store, topology, env: { TENANT_DEFAULT_QPS: '1000' } });
    keyA = await stack.tenant(a);
    keyB = await stack.tenant(b);
    for (const [tenant, key, tag] of [[a, keyA, 'A'], [b, keyB, 'B']] as const) {
      const es = entriesFor(tenant, tag);
      const r = await postIngest(stack.edgeUrl, key, es);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body.accepted).toBe(30);
      // The same batch again: stored once at rest (FINAL), so read once.
      expect((await postIngest(stack.edgeUrl, key, es)).status).toBe(200);
      sent[tenant] = [...es].sort((x, y) => (y['timestamp'] as number) - (x['timestamp'] as number));
    }
    await stack.waitLoaded();
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('with no filter returns the caller\'s entries only, newest first, each once', async () => {
    const p = await page(stack.edgeUrl, keyA, [['limit', '1000']]);
    expect(ids(p.entries)).toEqual(sent[a]?.map((e) => e['id']));
    expect(p.next).toBeNull();
    const log = p.entries.find((e) => e.id === 'A-l-1');
    expect(log).toMatchObject({ type: 'log', app: 'web', level: 'error', message: 'A request 1 done', labels: { env: 'dev', zone: 'z1', owner: a } });
    expect(log?.timestamp).toBe(new Date(base + 1000).toISOString());
    expect(p.entries.find((e) => e.id === 'A-m-3')).toMatchObject({ type: 'metric', name: 'mem', value: 3 });
  });

  it('each filter returns exactly the matching entries of the caller', async () => {
    const mine = sent[a] ?? [];
    const data = (e: Record<string, unknown>) => e['data'] as Record<string, unknown>;
    const labels = (e: Record<string, unknown>) => e['labels'] as Record<string, string>;
    const cases: Array<[Array<[string, string]>, (e: Record<string, unknown>) => boolean]> = [
      [[['type', 'log']], (e) => e['type'] === 'log'],
      [[['type', 'metric'], ['name', 'cpu']], (e) => e['type'] === 'metric' && data(e)['name'] === 'cpu'],
      [[['app', 'web']], (e) => e['app'] === 'web'],
      [[['label.env', 'prod']], (e) => labels(e)['env'] === 'prod'],
      [[['label.env', 'prod'], ['label.zone', 'z2']], (e) => labels(e)['env'] === 'prod' && labels(e)['zone'] === 'z2'],
      [[['type', 'log'], ['level', 'error']], (e) => e['type'] === 'log' && data(e)['level'] === 'error'],
      [[['q', 'request 1']], (e) => typeof data(e)['message'] === 'string' && (data(e)['message'] as string).includes('request 1')],
      [[['id', 'A-l-4']], (e) => e['id'] === 'A-l-4'],
      [[['from', new Date(base + 10_000).toISOString()], ['to', new Date(base + 20_000).toISOString()]], (e) => (e['timestamp'] as number) >= base + 10_000 && (e['timestamp'] as number) < base + 20_000],
      [[['from', '-2h'], ['to', 'now']], () => true],
      [[['from', '-1m']], () => false],
    ];
    for (const [params, match] of cases) {
      const got = await page(stack.edgeUrl, keyA, [...params, ['limit', '1000']]);
      expect(ids(got.entries), JSON.stringify(params)).toEqual(mine.filter(match).map((e) => e['id']));
    }
  });

  it('paging with cursor returns each entry once, in order, in both directions', async () => {
    const desc = await allPages(stack.edgeUrl, keyA, [['limit', '7']]);
    expect(ids(desc)).toEqual(sent[a]?.map((e) => e['id']));
    const asc = await allPages(stack.edgeUrl, keyA, [['limit', '4'], ['order', 'asc'], ['type', 'log']]);
    expect(ids(asc)).toEqual([...(sent[a] ?? [])].reverse().filter((e) => e['type'] === 'log').map((e) => e['id']));
    // The cursor also travels in a header, for NDJSON readers.
    const first = await get(stack.edgeUrl, keyA, [['limit', '5']]);
    expect(first.headers.get('ingest-next-cursor')).toBe((first.body as Page).next);
  });

  it('a query naming the other tenant in any parameter still returns only the caller\'s rows', async () => {
    const attempts: Array<Array<[string, string]>> = [
      [['tenant', b]],
      [['tenant_id', b]],
      [['label.owner', b]],
      [['app', b]],
      [['q', b]],
      [['id', 'B-l-1']],
      [['q', `' OR tenant_id = '${b}' --`]],
      [['label.owner\' OR 1=1 --', b]],
    ];
    for (const params of attempts) {
      const r = await page(stack.edgeUrl, keyA, [...params, ['limit', '1000']]);
      expect(r.entries.every((e) => e.labels['owner'] === a), JSON.stringify(params)).toBe(true);
      if (params[0]?.[0] === 'tenant' || params[0]?.[0] === 'tenant_id') expect(ids(r.entries)).toEqual(sent[a]?.map((e) => e['id']));
      else expect(r.entries).toEqual([]);
    }
    // A cursor made from the other tenant's page positions the caller's own read, nothing more.
    const other = await page(stack.edgeUrl, keyB, [['limit', '3']]);
    const cont = await page(stack.edgeUrl, keyA, [['limit', '1000'], ['cursor', other.next ?? '']]);
    expect(cont.entries.length).toBeGreaterThan(0);
    expect(cont.entries.every((e) => e.labels['owner'] === a)).toBe(true);
    // And B sees B's.
    expect(ids((await page(stack.edgeUrl, keyB, [['limit', '1000']])).entries)).toEqual(sent[b]?.map((e) => e['id']));
  });

  it('answers NDJSON when asked', async () => {
    const r = await get(stack.edgeUrl, keyA, [['limit', '3']], 'application/x-ndjson');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/application\/x-ndjson/);
    const lines = r.text.trim().split('\n').map((l) => JSON.parse(l) as StoredEntry);
    expect(ids(lines)).toEqual(sent[a]?.slice(0, 3).map((e) => e['id']));
  });

  it('refuses bad parameters with 400 INGEST_ERR_INVALID_PARAMETER naming the choices, and no key with 401', async () => {
    const bad: Array<[Array<[string, string]>, RegExp]> = [
      [[['type', 'foo']], /type.*log, metric, event, health, alert/],
      [[['limit', '10001']], /limit.*1 to 10000/],
      [[['from', 'yesterday']], /from.*RFC 3339/],
      [[['cursor', 'bogus']], /cursor/],
      [[['colour', 'red']], /colour.*unknown/],
      [[['from', 'now'], ['to', '-1h']], /not before to/],
    ];
    for (const [params, msg] of bad) {
      const r = await get(stack.edgeUrl, keyA, params);
      expect(r.status, JSON.stringify(params)).toBe(400);
      const err = (r.body as { error: { code: string; message: string } }).error;
      expect(err.code).toBe('INGEST_ERR_INVALID_PARAMETER');
      expect(err.message).toMatch(msg);
    }
    const anon = await fetch(new URL('/v2/query', stack.edgeUrl));
    expect(anon.status).toBe(401);
  });
});

describe('GET /v2/query bounds and its own rate', () => {
  let stack: InProcessStack;
  let key = '';
  beforeAll(async () => {
    // Tiny bounds so a small table crosses them: rows read, and (below) two queries per second. The edge's
    // in-flight budget is below one body-read step (64 KiB): a read that held any of it would be refused.
    stack = await startInProcessStack({ store, topology: 'single', env: { QUERY_MAX_ROWS_READ: '5', TENANT_DEFAULT_RPS: '5', EDGE_INFLIGHT_BYTES: '16KiB' } });
    const t = tenantId('qbound');
    // The tenant's own query rate (tenants add --qps) over TENANT_DEFAULT_QPS (20).
    key = await stack.tenant(t, { queriesPerSecond: 2 });
    const es = Array.from({ length: 40 }, (_, i) => ({ type: 'log', timestamp: Date.now() - i, data: { level: 'info', message: `m${i}` } }));
    expect((await postIngest(stack.edgeUrl, key, es)).status).toBe(200);
    await stack.waitLoaded();
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('a query over the rows-read bound gets 422 INGEST_ERR_QUERY_TOO_MANY_ROWS; over the query rate, 429 INGEST_ERR_QUERY_RATE while ingest still answers', async () => {
    const r = await get(stack.edgeUrl, key, []);
    expect(r.status, r.text).toBe(422);
    expect((r.body as { error: { code: string } }).error.code).toBe('INGEST_ERR_QUERY_TOO_MANY_ROWS');
    // More reads than the query rate allows, faster than its bucket refills.
    const answers = [];
    for (let i = 0; i < 12; i++) answers.push(await get(stack.edgeUrl, key, []));
    const limited = answers.find((x) => x.status === 429);
    expect((limited?.body as { error: { code: string; message: string } } | undefined)?.error).toMatchObject({ code: 'INGEST_ERR_QUERY_RATE', message: expect.stringMatching(/query rate of 2 queries\/s/) as unknown as string });
    expect(limited?.headers.get('retry-after')).toMatch(/^\d+$/);
    // Reads took none of the ingest request rate (5/s, fewer than the reads just sent): a write right after is accepted.
    expect((await postIngest(stack.edgeUrl, key, [{ type: 'log', timestamp: Date.now(), data: { level: 'info', message: 'after' } }])).status).toBe(200);
  });
});
