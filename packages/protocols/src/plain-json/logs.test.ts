import { describe, expect, it } from 'vitest';
import { epochToMs, plainLogsToEntries } from './logs.ts';

const NOW = Date.parse('2026-12-01T10:00:00Z');
const opts = { now: NOW, maxEntries: 100 };

describe('plain JSON logs', () => {
  it('reads a Fluent Bit record (log, float-second date) and a Vector record (message, ISO timestamp)', () => {
    const fluentBit = { date: NOW / 1000 + 0.25, log: 'GET /health 200', stream: 'stdout', kubernetes: { pod_name: 'web-1' } };
    const vector = { message: 'user signed in', timestamp: '2026-12-01T09:59:59.5Z', level: 'WARNING', host: 'h1', source_type: 'file', service: 'auth', status: 200 };
    const out = plainLogsToEntries([fluentBit, vector], opts);
    expect(out.refusals).toEqual([]);
    expect(out.entries[0]).toEqual({ type: 'log', timestamp: NOW + 250, data: { message: 'GET /health 200', kubernetes: { pod_name: 'web-1' } }, labels: { stream: 'stdout' } });
    expect(out.entries[1]).toEqual({ type: 'log', timestamp: '2026-12-01T09:59:59.5Z', app: 'auth', data: { message: 'user signed in', level: 'WARNING' }, labels: { host: 'h1', source_type: 'file', status: '200' } });
  });

  it('takes epoch seconds, ms, µs and ns, numbers or digit strings', () => {
    const s = NOW / 1000;
    expect([s, NOW, NOW * 1000, NOW * 1e6].map(epochToMs)).toEqual([NOW, NOW, NOW, NOW]);
    // A float second whose ms product falls just short of the integer in doubles.
    expect(epochToMs(1764583200.123)).toBe(1764583200123);
    expect(epochToMs(1764583200.1239)).toBe(1764583200123);
    const out = plainLogsToEntries([{ msg: 'a', time: String(NOW) }, { msg: 'b' }], opts);
    expect(out.entries.map((e) => e.timestamp)).toEqual([NOW, NOW]);
  });

  it('keeps an unknown level word in data and stores the entry at info; pino numbers pass', () => {
    const out = plainLogsToEntries([{ msg: 'a', severity: 'verbose' }, { msg: 'b', level: 50 }], opts);
    expect(out.entries[0]!.data).toEqual({ message: 'a', original_level: 'verbose' });
    expect(out.entries[1]!.data).toEqual({ message: 'b', level: 50 });
  });

  it('refuses, visibly and per item, what is not a log object', () => {
    const out = plainLogsToEntries(['a line', { no: 'message' }, { message: 'ok' }], opts);
    expect(out.entries).toHaveLength(1);
    expect(out.origins).toEqual([2]);
    expect(out.refusals.map((r) => [r.item, r.code])).toEqual([
      [0, 'INGEST_ERR_ENTRY_UNDECODABLE'],
      [1, 'INGEST_ERR_ENTRY_UNDECODABLE'],
    ]);
  });

  it('puts fields beyond the label limits into data.attributes', () => {
    const o: Record<string, unknown> = { message: 'm' };
    for (let i = 0; i < 40; i++) o[`f${i}`] = 'v';
    const e = plainLogsToEntries([o], opts).entries[0]!;
    expect(Object.keys(e.labels!)).toHaveLength(32);
    expect(Object.keys(e.data.attributes as object)).toHaveLength(8);
  });
});
