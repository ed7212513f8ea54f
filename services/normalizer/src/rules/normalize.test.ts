import { describe, it, expect } from 'vitest';
import { ERROR_CATALOG, type EntryErrorCode } from '@ingest/contracts';
import { DEFAULT_ENTRY_LIMITS, normalizeEntry, type EntryOutcome, type NormalizeContext } from './index.ts';

const NOW = Date.UTC(2024, 4, 1, 12, 0, 0);
const ctx: NormalizeContext = { tenant: 'acme', receivedAt: NOW };

function ok(raw: unknown, c: NormalizeContext = ctx) {
  const r = normalizeEntry(raw, c);
  if (!r.ok) throw new Error(`expected ok, got ${r.code}: ${r.message}`);
  return r.entry;
}

function rejected(raw: unknown, c: NormalizeContext = ctx): Extract<EntryOutcome, { ok: false }> {
  const r = normalizeEntry(raw, c);
  if (r.ok) throw new Error(`expected a rejection, got ${JSON.stringify(r.entry)}`);
  return r;
}

/** As JSON.parse reads a producer's body: 1e309 overflows to Infinity. */
const parsed = (json: string): unknown => JSON.parse(json);
const log = (data: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({ type: 'log', timestamp: NOW, data, ...extra });
const metric = (data: Record<string, unknown>) => ({ type: 'metric', timestamp: NOW, data });

describe('valid entries of each type', () => {
  it('log: canonical level, message lifted, extra data kept, unknown top-level keys dropped', () => {
    const e = ok({
      id: 'req-1',
      type: 'log',
      timestamp: '2024-05-01T14:00:00+02:00',
      app: 'checkout',
      source: 'pod-7',
      labels: { env: 'prod', 'k8s.ns': 'shop' },
      data: { message: 'paid', level: 'WARNING', orderId: 42 },
      surprise: { dropped: true },
    });
    expect(e).toEqual({
      id: 'req-1',
      tenant: 'acme',
      type: 'log',
      ts: NOW,
      receivedAt: NOW,
      app: 'checkout',
      source: 'pod-7',
      labels: { env: 'prod', 'k8s.ns': 'shop' },
      name: '',
      value: null,
      unit: '',
      level: 'warn',
      message: 'paid',
      data: { orderId: 42 },
    });
  });

  it.each([
    [undefined, 'info'],
    ['TRACE', 'trace'],
    ['Debug', 'debug'],
    ['warning', 'warn'],
    ['err', 'error'],
    ['critical', 'fatal'],
    ['crit', 'fatal'],
    ['notice', 'info'],
    [30, 'info'],
    [50, 'error'],
  ])('log level %j → %s', (level, expected) => {
    expect(ok(log({ message: 'm', level })).level).toBe(expected);
  });

  it('metric: converted to canonical unit with provenance and kind in data', () => {
    const e = ok(metric({ name: 'http.server.duration', value: 1500, unit: 'ms', kind: 'Counter', route: '/pay' }));
    expect(e).toMatchObject({ type: 'metric', name: 'http.server.duration', value: 1.5, unit: 's', level: '', message: '' });
    expect(e.data).toEqual({ route: '/pay', kind: 'counter', originalUnit: 'ms', originalValue: 1500 });
  });

  it('metric: canonical or absent unit records no provenance; kind defaults to gauge', () => {
    expect(ok(metric({ name: 'up', value: 1 })).data).toEqual({ kind: 'gauge' });
    expect(ok(metric({ name: 'rss', value: 10, unit: 'bytes' }))).toMatchObject({ value: 10, unit: 'bytes', data: { kind: 'gauge' } });
    expect(ok(metric({ name: 'cpu', value: 50, unit: '%' }))).toMatchObject({ value: 0.5, unit: 'ratio', data: { originalUnit: '%', originalValue: 50 } });
  });

  it('metric: a producer cannot forge the conversion provenance', () => {
    expect(ok(metric({ name: 'x', value: 1, originalUnit: 'lies' })).data).toEqual({ kind: 'gauge', originalUnit: 'lies' });
    expect(ok(metric({ name: 'x', value: 1000, unit: 'ms', originalUnit: 'lies' })).data).toMatchObject({ originalUnit: 'ms' });
  });

  it('event: name lifted, attributes kept in data', () => {
    const e = ok({ type: 'event', timestamp: NOW, data: { name: 'deploy', attributes: { version: '1.2.3', canary: true } } });
    expect(e).toMatchObject({ type: 'event', name: 'deploy', value: null, level: '', data: { attributes: { version: '1.2.3', canary: true } } });
  });

  it('health: status aliases, check name, latency in seconds', () => {
    const e = ok({ type: 'health', timestamp: NOW, app: 'api', data: { status: 'Healthy', check: 'db', latencyMs: 250, message: 'fine', region: 'eu' } });
    expect(e).toMatchObject({ type: 'health', name: 'db', level: 'ok', message: 'fine', value: null, unit: '' });
    expect(e.data).toEqual({ region: 'eu', latencySeconds: 0.25 });

    const f = ok({ type: 'health', timestamp: NOW, data: { status: 'unhealthy', name: 'cache', latency: { value: 2, unit: 'min' } } });
    expect(f).toMatchObject({ name: 'cache', level: 'down', data: { latencySeconds: 120 } });
  });

  it.each([
    ['up', 'ok'],
    ['pass', 'ok'],
    ['warn', 'degraded'],
    ['fail', 'down'],
    ['critical', 'down'],
    ['unknown', 'unknown'],
  ])('health status %s → %s', (status, expected) => {
    expect(ok({ type: 'health', timestamp: NOW, data: { status } }).level).toBe(expected);
  });

  it('health: check name defaults to app, then "default"', () => {
    expect(ok({ type: 'health', timestamp: NOW, app: 'billing', data: { status: 'ok' } }).name).toBe('billing');
    expect(ok({ type: 'health', timestamp: NOW, data: { status: 'ok' } }).name).toBe('default');
  });

  it('alert: severity aliases, state default, summary → message', () => {
    const e = ok({ type: 'alert', timestamp: NOW, data: { name: 'DiskFull', severity: 'crit', summary: 'disk 95%', runbook: 'x' } });
    expect(e).toMatchObject({ type: 'alert', name: 'DiskFull', level: 'critical', message: 'disk 95%', data: { state: 'firing', runbook: 'x' } });
    expect(ok({ type: 'alert', timestamp: NOW, data: { name: 'a', severity: 'warn', state: 'RESOLVED' } })).toMatchObject({
      level: 'warning',
      data: { state: 'resolved' },
    });
  });

  it('treats null optionals like absent ones', () => {
    const e = ok({ type: 'log', timestamp: NOW, id: null, app: null, source: null, labels: null, data: { message: 'x', level: null } });
    expect(e).toMatchObject({ app: '', source: '', labels: {}, level: 'info' });
    expect(e.id).toMatch(/^h-[0-9a-f]{32}$/);
  });

  it('keeps a "__proto__" data key as data instead of swapping the prototype', () => {
    const raw: unknown = JSON.parse('{"type":"log","timestamp":0,"data":{"message":"x","__proto__":{"polluted":1}},"labels":{"__proto__":"v"}}');
    (raw as { timestamp: number }).timestamp = NOW;
    const e = ok(raw);
    expect(Object.getPrototypeOf(e.data)).toBe(Object.prototype);
    expect(Object.keys(e.data)).toEqual(['__proto__']);
    expect(JSON.stringify(e.data)).toBe('{"__proto__":{"polluted":1}}');
    expect(JSON.stringify(e.labels)).toBe('{"__proto__":"v"}');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('ids', () => {
  it('keeps a producer id', () => {
    expect(ok(log({ message: 'x' }, { id: 'abc-123 ~!' })).id).toBe('abc-123 ~!');
  });

  it('assigns h- + 32 hex, stable across key order at every depth', () => {
    const a = ok({ type: 'log', timestamp: NOW, labels: { a: '1', b: '2' }, data: { message: 'x', nested: { p: 1, q: [1, { r: 2, s: 3 }] } } });
    const b = ok({ data: { nested: { q: [1, { s: 3, r: 2 }], p: 1 }, message: 'x' }, labels: { b: '2', a: '1' }, timestamp: NOW, type: 'log' });
    expect(a.id).toMatch(/^h-[0-9a-f]{32}$/);
    expect(b.id).toBe(a.id);
  });

  it('differs across tenants and across content, including array order', () => {
    const raw = log({ message: 'x', list: [1, 2] });
    const base = ok(raw).id;
    expect(ok(raw, { ...ctx, tenant: 'other' }).id).not.toBe(base);
    expect(ok(log({ message: 'y', list: [1, 2] })).id).not.toBe(base);
    expect(ok(log({ message: 'x', list: [2, 1] })).id).not.toBe(base);
  });

  it('ignores dropped top-level keys, so a per-attempt counter does not defeat dedup', () => {
    expect(ok(log({ message: 'x' }, { attempt: 1 })).id).toBe(ok(log({ message: 'x' }, { attempt: 2 })).id);
  });

  it('does not depend on receivedAt (a retry arrives later)', () => {
    expect(ok(log({ message: 'x' }), { ...ctx, receivedAt: NOW + 5000 }).id).toBe(ok(log({ message: 'x' })).id);
  });
});

/** One input per entry-scope code; the test below fails if a catalog code has no reachable case. */
const CASES: Partial<Record<EntryErrorCode, unknown[]>> = {
  INGEST_ERR_ENTRY_NOT_OBJECT: [null, [], 'log', 42, true],
  INGEST_ERR_ENTRY_TYPE: [{ type: 'trace', timestamp: NOW, data: {} }, { type: 1, timestamp: NOW, data: {} }],
  INGEST_ERR_ENTRY_FIELD_MISSING: [
    { timestamp: NOW, data: {} },
    { type: 'log', data: { message: 'x' } },
    { type: 'log', timestamp: NOW },
    log({ level: 'info' }),
    metric({ value: 1 }),
    metric({ name: 'x' }),
    { type: 'event', timestamp: NOW, data: { name: '' } },
    { type: 'health', timestamp: NOW, data: { check: 'db' } },
    { type: 'alert', timestamp: NOW, data: { name: 'a' } },
  ],
  INGEST_ERR_ENTRY_FIELD_TYPE: [
    log({ message: 5 }),
    log({ message: 'x', level: ['info'] }),
    log({ message: 'x' }, { app: 5 }),
    { type: 'log', timestamp: NOW, data: [] },
    { type: 'event', timestamp: NOW, data: { name: 'e', attributes: [1] } },
    { type: 'health', timestamp: NOW, data: { status: 'ok', latency: 12 } },
    { type: 'health', timestamp: NOW, data: { status: 'ok', check: 7 } },
    metric({ name: 'x', value: 1, unit: 5 }),
  ],
  INGEST_ERR_ENTRY_TIMESTAMP: [log({ message: 'x' }, { timestamp: NOW - 8 * 86400_000 }), log({ message: 'x' }, { timestamp: '2024-05-01T12:00:00' })],
  INGEST_ERR_ENTRY_ENUM: [
    log({ message: 'x', level: 'loud' }),
    log({ message: 'x', level: 35 }),
    metric({ name: 'x', value: 1, kind: 'histogram' }),
    { type: 'health', timestamp: NOW, data: { status: 'meh' } },
    { type: 'alert', timestamp: NOW, data: { name: 'a', severity: 'page' } },
    { type: 'alert', timestamp: NOW, data: { name: 'a', severity: 'info', state: 'pending' } },
  ],
  INGEST_ERR_ENTRY_TOO_LARGE: [
    log({ message: 'x'.repeat(32 * 1024 + 1) }),
    log({ message: 'é'.repeat(16 * 1024 + 1) }), // 2 bytes each: over in bytes, not in characters
    log({ message: 'x' }, { app: 'a'.repeat(129) }),
    metric({ name: `m${'x'.repeat(200)}`, value: 1 }),
    { type: 'event', timestamp: NOW, data: { name: 'e', attributes: { blob: 'x'.repeat(17 * 1024) } } },
    log({ message: 'x', deep: JSON.parse(`${'['.repeat(40)}${']'.repeat(40)}`) as unknown }),
  ],
  INGEST_ERR_ENTRY_LABELS: [
    log({ message: 'x' }, { labels: ['a'] }),
    log({ message: 'x' }, { labels: { env: 1 } }),
    log({ message: 'x' }, { labels: { env: { nested: 'x' } } }),
    log({ message: 'x' }, { labels: { '1bad': 'x' } }),
    log({ message: 'x' }, { labels: { 'has space': 'x' } }),
    log({ message: 'x' }, { labels: { ['k'.repeat(65)]: 'x' } }),
    log({ message: 'x' }, { labels: { env: 'v'.repeat(257) } }),
    log({ message: 'x' }, { labels: { env: '€'.repeat(86) } }), // 86 characters, 258 bytes
    log({ message: 'x' }, { labels: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`l${i}`, 'v'])) }),
  ],
  INGEST_ERR_ENTRY_UNIT: [
    metric({ name: 'x', value: 1, unit: 'furlong' }),
    metric({ name: 'x', value: 1, unit: 'Mb' }),
    { type: 'health', timestamp: NOW, data: { status: 'ok', latency: { value: 1, unit: 'MB' } } },
  ],
  INGEST_ERR_ENTRY_VALUE: [
    metric({ name: 'x', value: '1.5' }),
    metric({ name: 'x', value: true }),
    metric({ name: 'x', value: 1e308, unit: 'TiB' }),
    { type: 'health', timestamp: NOW, data: { status: 'ok', latencyMs: '12' } },
    parsed(`{"type":"metric","timestamp":${NOW},"data":{"name":"x","value":1e309}}`),
    parsed(`{"type":"log","timestamp":${NOW},"data":{"message":"x","extra":{"n":[1,-1e400]}}}`),
  ],
  INGEST_ERR_ENTRY_ID: [
    log({ message: 'x' }, { id: '' }),
    log({ message: 'x' }, { id: 7 }),
    log({ message: 'x' }, { id: 'x'.repeat(129) }),
    log({ message: 'x' }, { id: 'tab\there' }),
    log({ message: 'x' }, { id: 'naïve' }),
  ],
  INGEST_ERR_ENTRY_NAME: [metric({ name: '1xx', value: 1 }), metric({ name: 'http latency', value: 1 }), metric({ name: 'a-b', value: 1 })],
};

describe('error codes', () => {
  const entryCodes = Object.entries(ERROR_CATALOG)
    // The loader raises STORE_REFUSED for a row ClickHouse refuses, after the normalizer took it;
    // the edge's protocol decoders raise ENTRY_UNDECODABLE for items that never become entries
    // (packages/protocols tests each case).
    .filter(([code, e]) => e.scope === 'entry' && code !== 'INGEST_ERR_STORE_REFUSED' && code !== 'INGEST_ERR_ENTRY_UNDECODABLE')
    .map(([code]) => code);

  it('has a reachable case for every entry-scope code in the catalog', () => {
    expect(entryCodes.filter((code) => !(code in CASES))).toEqual([]);
  });

  for (const [code, inputs] of Object.entries(CASES)) {
    it.each(inputs.map((input, i) => [i, input] as const))(`${code} #%i`, (_i, input) => {
      const r = rejected(input);
      expect(r.code).toBe(code);
      expect(ERROR_CATALOG[r.code].scope).toBe('entry');
      expect(r.message.length).toBeGreaterThan(10);
    });
  }

  it('rejects an entry whose whole serialized form is over maxEntryBytes', () => {
    // Each part is within its own bound; together they are not.
    const labels = Object.fromEntries(Array.from({ length: 32 }, (_, i) => [`l${i}`, 'v'.repeat(256)]));
    const raw = log({ message: 'm'.repeat(30 * 1024), extra: 'e'.repeat(15 * 1024) }, { labels });
    expect(rejected(raw, { ...ctx, limits: { maxEntryBytes: 50_000 } }).code).toBe('INGEST_ERR_ENTRY_TOO_LARGE');
    expect(ok(raw).message.length).toBe(30 * 1024);
  });

  it('counts JSON escapes towards the entry size', () => {
    const raw = log({ message: '\u0001'.repeat(12 * 1024) }); // 12 KiB of text, 72 KiB as JSON
    expect(rejected(raw).code).toBe('INGEST_ERR_ENTRY_TOO_LARGE');
  });
});

describe('error messages', () => {
  it('names the field and the accepted values', () => {
    expect(rejected(log({ message: 'x', level: 'loud' })).message).toBe('data.level "loud" is not one of trace, debug, info, warn, error, fatal');
    expect(rejected(metric({ name: 'x', value: 1, unit: 'furlong' })).message).toMatch(/^data\.unit "furlong" is not a known unit; use one of .*ms.*KiB/);
    expect(rejected({ type: 'metric', timestamp: NOW, data: { value: 1 } }).message).toBe('data.name is required: a metric name');
    expect(rejected(log({ message: 'x' }, { labels: { env: 3 } })).message).toMatch(/^labels\.env must be a string, got number 3/);
  });

  it('never echoes more than 64 characters of user input', () => {
    const long = 'Z'.repeat(10_000);
    const inputs = [
      log({ message: 'x', level: long }),
      log({ message: 'x' }, { type: long }),
      log({ message: 'x' }, { timestamp: long }),
      log({ message: 'x' }, { labels: { [long]: 'v' } }),
      metric({ name: long, value: 1 }),
      metric({ name: 'x', value: 1, unit: `${long.slice(0, 60)}` }),
      metric({ name: 'x', value: long }),
      { type: 'health', timestamp: NOW, data: { status: long } },
    ];
    for (const input of inputs) {
      const m = rejected(input).message;
      expect(m.match(/Z+/)?.[0].length ?? 0).toBeLessThanOrEqual(64);
      expect(m.length).toBeLessThan(400);
    }
  });
});

describe('limits', () => {
  it('applies per-tenant overrides and ignores undefined ones', () => {
    const labels = { a: '1', b: '2', c: '3' };
    expect(rejected(log({ message: 'x' }, { labels }), { ...ctx, limits: { maxLabels: 2 } }).code).toBe('INGEST_ERR_ENTRY_LABELS');
    expect(ok(log({ message: 'x' }, { labels }), { ...ctx, limits: { maxLabels: undefined } }).labels).toEqual(labels);
    expect(rejected(log({ message: 'abcdef' }), { ...ctx, limits: { maxMessageBytes: 5 } }).code).toBe('INGEST_ERR_ENTRY_TOO_LARGE');
  });

  it('accepts values exactly at the documented bounds', () => {
    const labels = Object.fromEntries(Array.from({ length: DEFAULT_ENTRY_LIMITS.maxLabels }, (_, i) => [`k${i}${'k'.repeat(60)}`.slice(0, 64), 'v'.repeat(256)]));
    const e = ok({
      type: 'metric',
      timestamp: NOW,
      id: 'i'.repeat(128),
      app: 'a'.repeat(128),
      source: 's'.repeat(128),
      labels,
      data: { name: `n${'x'.repeat(199)}`, value: 1 },
    });
    expect(Object.keys(e.labels)).toHaveLength(32);
    expect(ok(log({ message: 'é'.repeat(16 * 1024) })).message).toHaveLength(16 * 1024);
  });
});

describe('costly entries are bounded', () => {
  it('refuses 300k labels on the count alone, before any label is read', () => {
    const labels: Record<string, string> = {};
    for (let i = 0; i < 300_000; i++) labels[`k${i}`] = 'v';
    let read = 0;
    // A value read means the per-label walk started; the count must refuse the entry first.
    Object.defineProperty(labels, 'spy', { enumerable: true, get: () => (read++, 'v') });
    const r = rejected(log({ message: 'x' }, { labels }));
    expect(r.code).toBe('INGEST_ERR_ENTRY_LABELS');
    expect(r.message).toContain(`at most ${DEFAULT_ENTRY_LIMITS.maxLabels} are accepted`);
    expect(read).toBe(0);
  });

  it('caps the bytes of all labels together, keys and values in UTF-8', () => {
    const labels = { a: 'é'.repeat(30), b: 'é'.repeat(30) }; // 61 + 61 bytes
    expect(Object.keys(ok(log({ message: 'x' }, { labels }), { ...ctx, limits: { maxLabelBytes: 122 } }).labels)).toHaveLength(2);
    const r = rejected(log({ message: 'x' }, { labels }), { ...ctx, limits: { maxLabelBytes: 121 } });
    expect(r.code).toBe('INGEST_ERR_ENTRY_LABELS');
    expect(r.message).toContain('more than 121 bytes');
    expect(DEFAULT_ENTRY_LIMITS.maxLabelBytes).toBe(16 * 1024);
  });

  it('reports a number that overflows (1e309) as not a finite number, naming the field, never as missing', () => {
    const value = rejected(parsed(`{"type":"metric","timestamp":${NOW},"data":{"name":"x","value":1e309}}`));
    expect(value).toMatchObject({ code: 'INGEST_ERR_ENTRY_VALUE' });
    expect(value.message).toMatch(/^data\.value is not a finite number/);
    const nested = rejected(parsed(`{"type":"event","timestamp":${NOW},"data":{"name":"e","attributes":{"big":[0,-1e999]}}}`));
    expect(nested).toMatchObject({ code: 'INGEST_ERR_ENTRY_VALUE' });
    expect(nested.message).toMatch(/^data\.attributes\.big\[1\] is not a finite number/);
  });
});
