import { describe, it, expect } from 'vitest';
import { ERROR_CATALOG } from '@ingest/contracts';
import { DEFAULT_ENTRY_LIMITS, normalizeEntry, type EntryOutcome } from './index.ts';

const NOW = Date.UTC(2024, 4, 1, 12, 0, 0);
const ctx = { tenant: 'fuzz', receivedAt: NOW };

/** mulberry32: a seeded PRNG, so a failure reproduces from its seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const STRINGS = ['', 'log', 'metric', 'event', 'health', 'alert', 'info', 'WARN', 'ok', 'ms', 'KiB', 'Mb', '%', '__proto__', 'constructor',
  'toString', '2024-05-01T12:00:00Z', '2024-05-01T12:00:00', String(NOW), 'NaN', 'Infinity', '-0', '1e400', 'é', '\u0000', '\ud800', '😀',
  'x'.repeat(300), 'y'.repeat(70_000)];
const NUMBERS = [0, -0, 1, -1, 0.5, NOW, NOW / 1000, NOW * 1000, 1e308, -1e308, Number.MAX_SAFE_INTEGER, 5e-324, 30, 1e21];
const KEYS = ['id', 'type', 'timestamp', 'app', 'source', 'data', 'labels', 'message', 'level', 'name', 'value', 'unit', 'kind', 'status',
  'check', 'latency', 'latencyMs', 'severity', 'state', 'summary', 'attributes', '__proto__', 'constructor', 'env', ''];

function randomJson(r: () => number, depth: number): unknown {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
  const roll = r();
  if (depth <= 0 || roll < 0.45) {
    const p = r();
    if (p < 0.35) return pick(STRINGS);
    if (p < 0.7) return pick(NUMBERS);
    if (p < 0.85) return r() < 0.5;
    return null;
  }
  if (roll < 0.6) return Array.from({ length: Math.floor(r() * 4) }, () => randomJson(r, depth - 1));
  const o: Record<string, unknown> = {};
  const n = Math.floor(r() * 6);
  for (let i = 0; i < n; i++) o[pick(KEYS)] = randomJson(r, depth - 1);
  return o;
}

const VALID: unknown[] = [
  { type: 'log', timestamp: NOW, data: { message: 'm', level: 'warn' }, labels: { env: 'prod' } },
  { type: 'metric', timestamp: '2024-05-01T12:00:00Z', data: { name: 'x', value: 2, unit: 'KiB', kind: 'counter' } },
  { type: 'event', timestamp: NOW, data: { name: 'e', attributes: { a: 1 } } },
  { type: 'health', timestamp: NOW, data: { status: 'up', latency: { value: 3, unit: 'ms' } } },
  { type: 'alert', timestamp: NOW, data: { name: 'a', severity: 'crit', summary: 's' } },
];

/** Replaces one field somewhere in a valid entry with a random value, to fuzz past the first check. */
function mutate(r: () => number, base: unknown): unknown {
  const entry = structuredClone(base) as Record<string, unknown>;
  const target = r() < 0.5 ? entry : (entry.data as Record<string, unknown>);
  const keys = [...Object.keys(target), ...KEYS];
  target[keys[Math.floor(r() * keys.length)] as string] = randomJson(r, 3);
  return entry;
}

function checkOutcome(input: unknown, out: EntryOutcome): void {
  if (out.ok) {
    const e = out.entry;
    expect(Number.isInteger(e.ts)).toBe(true);
    expect(e.ts).toBeGreaterThanOrEqual(NOW - DEFAULT_ENTRY_LIMITS.maxPastMs);
    expect(e.ts).toBeLessThanOrEqual(NOW + DEFAULT_ENTRY_LIMITS.maxFutureMs);
    expect(e.id.length).toBeGreaterThan(0);
    expect(e.value === null || Number.isFinite(e.value)).toBe(true);
    expect(Buffer.byteLength(JSON.stringify(e))).toBeLessThanOrEqual(DEFAULT_ENTRY_LIMITS.maxEntryBytes);
    for (const v of Object.values(e.labels)) expect(typeof v).toBe('string');
  } else {
    expect(ERROR_CATALOG[out.code]?.scope, JSON.stringify(input)?.slice(0, 200)).toBe('entry');
    expect(out.message.length).toBeGreaterThan(0);
    expect(out.message.length).toBeLessThan(500);
  }
}

describe('fuzz', () => {
  it('never throws on random JSON values, and every outcome is well formed', () => {
    const r = rng(1);
    for (let i = 0; i < 20_000; i++) {
      const input = randomJson(r, 5);
      checkOutcome(input, normalizeEntry(input, ctx));
    }
  });

  it('never throws on mutations of valid entries, and some of them are still accepted', () => {
    const r = rng(2);
    let accepted = 0;
    for (let i = 0; i < 20_000; i++) {
      const input = mutate(r, VALID[i % VALID.length]);
      const out = normalizeEntry(input, ctx);
      checkOutcome(input, out);
      if (out.ok) accepted++;
    }
    // Guards the fuzzer itself: if nothing passes, it only ever exercises the first check.
    expect(accepted).toBeGreaterThan(1000);
  });

  it('survives pathological shapes without throwing', () => {
    let deep: unknown = 'leaf';
    for (let i = 0; i < 100_000; i++) deep = { d: deep };
    let deepArray: unknown = [];
    for (let i = 0; i < 100_000; i++) deepArray = [deepArray];
    const cyclic: Record<string, unknown> = { message: 'x' };
    cyclic.self = cyclic;
    const inputs: unknown[] = [
      undefined,
      Number.NaN,
      Symbol('s'),
      () => 1,
      new Date(NOW),
      { type: 'log', timestamp: NOW, data: deep },
      { type: 'log', timestamp: NOW, data: { message: 'x', deep } },
      { type: 'log', timestamp: NOW, data: { message: 'x' }, labels: { a: deep } },
      { type: 'log', timestamp: NOW, data: { message: 'x', deepArray } },
      { type: 'log', timestamp: NOW, data: cyclic },
      { type: 'log', timestamp: NOW, data: { message: 'x', big: 10n } },
      { type: 'log', timestamp: NOW, data: { message: 'x', nan: Number.NaN } },
      { type: 'log', timestamp: NOW, data: { message: 'x', when: new Date(NOW) } },
      { type: 'log', timestamp: NOW, data: Object.create(null) as unknown },
      {
        type: 'log',
        timestamp: NOW,
        get data(): unknown {
          throw new Error('hostile getter');
        },
      },
      { type: 'metric', timestamp: NOW, data: { name: 'x', value: Number.MAX_VALUE, unit: 'PiB' } },
      { type: 'log', timestamp: NOW, data: { message: 'x' }, labels: Object.fromEntries(Array.from({ length: 100_000 }, (_, i) => [`k${i}`, 'v'])) },
    ];
    for (const input of inputs) {
      let out: EntryOutcome | undefined;
      expect(() => {
        out = normalizeEntry(input, ctx);
      }).not.toThrow();
      expect(out?.ok).toBe(false);
    }
  });
});
