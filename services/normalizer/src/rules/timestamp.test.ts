import { describe, it, expect } from 'vitest';
import { DEFAULT_ENTRY_LIMITS } from './limits.ts';
import { normalizeTimestamp, parseIsoTimestamp } from './timestamp.ts';

const NOW = Date.UTC(2024, 4, 1, 12, 0, 0); // 2024-05-01T12:00:00Z

describe('parseIsoTimestamp', () => {
  it.each([
    ['2024-05-01T12:00:00Z', NOW],
    ['2024-05-01t12:00:00z', NOW],
    ['2024-05-01 12:00:00Z', NOW],
    ['2024-05-01T12:00Z', NOW],
    ['2024-05-01T14:00:00+02:00', NOW],
    ['2024-05-01T14:00:00+0200', NOW],
    ['2024-05-01T14:00:00+02', NOW],
    ['2024-05-01T06:30:00-05:30', NOW],
    ['2024-05-01T12:00:00.5Z', NOW + 500],
    ['2024-05-01T12:00:00,25Z', NOW + 250],
    ['2024-05-01T12:00:00.123456789Z', NOW + 123],
    ['2024-05-01T12:00:00.999999Z', NOW + 999],
    ['2024-05-02T01:00:00+13:00', NOW],
    ['2024-02-29T00:00:00Z', Date.UTC(2024, 1, 29)],
    ['2024-05-01T11:59:60Z', NOW - 1],
  ])('%s → %d', (input, expected) => {
    expect(parseIsoTimestamp(input)).toBe(expected);
  });

  it.each([
    ['2024-05-01T12:00:00', /no UTC offset/],
    ['2024-05-01 12:00', /no UTC offset/],
    ['2024-05-01', /not an ISO 8601/],
    ['2024-13-01T00:00:00Z', /not a valid calendar/],
    ['2023-02-29T00:00:00Z', /not a valid calendar/],
    ['2024-04-31T00:00:00Z', /not a valid calendar/],
    ['2024-05-01T24:00:00Z', /not a valid calendar/],
    ['2024-05-01T12:60:00Z', /not a valid calendar/],
    ['2024-05-01T12:00:61Z', /not a valid calendar/],
    ['2024-05-01T12:00:00+24:00', /invalid UTC offset/],
    ['2024-05-01T12:00:00+02:60', /invalid UTC offset/],
    ['2024-05-01T12:00:00 UTC', /not an ISO 8601/],
    ['Wed, 01 May 2024 12:00:00 GMT', /not an ISO 8601/],
    ['', /not an ISO 8601/],
    ['2024-05-01T12:00:00.Z', /not an ISO 8601/],
  ])('%s is refused', (input, why) => {
    const r = parseIsoTimestamp(input);
    expect(typeof r).toBe('string');
    expect(r).toMatch(why);
  });

  it('rejects a huge string quickly and without echoing it', () => {
    const input = `2024-05-01T12:00:00${'0'.repeat(1_000_000)}Z`;
    const started = performance.now();
    const r = parseIsoTimestamp(input);
    expect(performance.now() - started).toBeLessThan(50);
    expect(typeof r === 'string' && r.length).toBeLessThan(200);
  });
});

describe('normalizeTimestamp', () => {
  const limits = DEFAULT_ENTRY_LIMITS;

  it('passes epoch ms through and floors fractions to an integer', () => {
    expect(normalizeTimestamp(NOW, NOW, limits)).toBe(NOW);
    expect(normalizeTimestamp(NOW - 0.7, NOW, limits)).toBe(NOW - 1);
    expect(normalizeTimestamp(NOW + 1234.9, NOW, limits)).toBe(NOW + 1234);
  });

  it('converts ISO with an offset to UTC ms', () => {
    expect(normalizeTimestamp('2024-05-01T09:00:00.250-03:00', NOW, limits)).toBe(NOW + 250);
  });

  it('accepts the window edges and rejects one ms beyond them', () => {
    expect(normalizeTimestamp(NOW - limits.maxPastMs, NOW, limits)).toBe(NOW - limits.maxPastMs);
    expect(normalizeTimestamp(NOW + limits.maxFutureMs, NOW, limits)).toBe(NOW + limits.maxFutureMs);
    expect(normalizeTimestamp(NOW - limits.maxPastMs - 1, NOW, limits)).toMatchObject({ ok: false, code: 'INGEST_ERR_ENTRY_TIMESTAMP' });
    expect(normalizeTimestamp(NOW + limits.maxFutureMs + 1, NOW, limits)).toMatchObject({ ok: false, code: 'INGEST_ERR_ENTRY_TIMESTAMP' });
  });

  it('honours a configured window', () => {
    const tight = { ...limits, maxPastMs: 1000, maxFutureMs: 0 };
    expect(normalizeTimestamp(NOW - 1001, NOW, tight)).toMatchObject({ ok: false });
    expect(normalizeTimestamp(NOW + 1, NOW, tight)).toMatchObject({ ok: false });
    expect(normalizeTimestamp(NOW - 1000, NOW, tight)).toBe(NOW - 1000);
  });

  it('names the likely mistake for epoch seconds, micro- and nanoseconds', () => {
    expect(normalizeTimestamp(NOW / 1000, NOW, limits)).toMatchObject({ message: expect.stringMatching(/epoch seconds/) as unknown });
    expect(normalizeTimestamp(NOW * 1000, NOW, limits)).toMatchObject({ message: expect.stringMatching(/epoch microseconds/) as unknown });
    expect(normalizeTimestamp(NOW * 1e6, NOW, limits)).toMatchObject({ message: expect.stringMatching(/epoch nanoseconds/) as unknown });
  });

  it.each([
    [undefined, 'INGEST_ERR_ENTRY_FIELD_MISSING'],
    [null, 'INGEST_ERR_ENTRY_FIELD_MISSING'],
    [String(NOW), 'INGEST_ERR_ENTRY_TIMESTAMP'],
    [true, 'INGEST_ERR_ENTRY_TIMESTAMP'],
    [{ $date: NOW }, 'INGEST_ERR_ENTRY_TIMESTAMP'],
    [[NOW], 'INGEST_ERR_ENTRY_TIMESTAMP'],
    [Number.NaN, 'INGEST_ERR_ENTRY_TIMESTAMP'],
    [Number.POSITIVE_INFINITY, 'INGEST_ERR_ENTRY_TIMESTAMP'],
    [1e300, 'INGEST_ERR_ENTRY_TIMESTAMP'],
    [-1e300, 'INGEST_ERR_ENTRY_TIMESTAMP'],
  ])('%j is rejected with %s', (input, code) => {
    expect(normalizeTimestamp(input, NOW, limits)).toMatchObject({ ok: false, code });
  });

  it('tells a producer sending a numeric string to send a number', () => {
    expect(normalizeTimestamp(String(NOW), NOW, limits)).toMatchObject({ message: expect.stringMatching(/as a JSON number/) as unknown });
  });
});
