import { describe, expect, it } from 'vitest';
import { parseBound, parseIsoTime, parseReplayRequest, ReplayRequestError } from './request.ts';

describe('replay --from/--to parsing', () => {
  it('reads offsets, earliest/latest and ISO-8601 times with a zone', () => {
    expect(parseBound('1200', '--from')).toEqual({ kind: 'offset', offset: 1200, text: '1200' });
    expect(parseBound('0', '--to')).toMatchObject({ kind: 'offset', offset: 0 });
    expect(parseBound('EARLIEST', '--from')).toEqual({ kind: 'earliest', text: 'earliest' });
    expect(parseBound('latest', '--to')).toEqual({ kind: 'latest', text: 'latest' });
    expect(parseBound('2026-11-20T10:00:00Z', '--from')).toMatchObject({ kind: 'time', ms: Date.UTC(2026, 10, 20, 10) });
    expect(parseBound('2026-11-20T12:00:00+02:00', '--from')).toMatchObject({ kind: 'time', ms: Date.UTC(2026, 10, 20, 10) });
    expect(parseBound('2026-11-20T12:00+0200', '--from')).toMatchObject({ kind: 'time', ms: Date.UTC(2026, 10, 20, 10) });
    expect(parseBound('2026-11-20', '--from')).toMatchObject({ kind: 'time', ms: Date.UTC(2026, 10, 20) });
  });

  it('truncates sub-millisecond digits instead of rounding into the next millisecond', () => {
    expect(parseIsoTime('2026-11-20T10:00:00.123999999Z')).toBe(Date.UTC(2026, 10, 20, 10, 0, 0, 123));
    expect(parseIsoTime('2026-11-20T10:00:00.5Z')).toBe(Date.UTC(2026, 10, 20, 10, 0, 0, 500));
  });

  it.each([
    ['2026-11-20T10:00:00', 'no zone: ambiguous'],
    ['2026-02-30T00:00:00Z', 'not a calendar day'],
    ['2026-11-20T24:00:00Z', 'hour out of range'],
    ['yesterday', 'not a time'],
    ['-5', 'negative offset'],
    ['1.5', 'fractional offset'],
    ['99999999999999999999', 'beyond a safe integer'],
    ['', 'empty'],
  ])('refuses %j (%s) naming the flag', (text) => {
    expect(() => parseBound(text, '--from')).toThrow(ReplayRequestError);
    expect(() => parseBound(text, '--from')).toThrow(/--from/);
  });
});

describe('replay request validation', () => {
  const base = { from: '10', to: '20' };

  it('defaults to every partition, all tenants and the shadow table', () => {
    expect(parseReplayRequest(base)).toMatchObject({ partitions: undefined, tenant: undefined, target: 'telemetry_shadow' });
  });

  it('refuses --from after --to for offsets and for times', () => {
    expect(() => parseReplayRequest({ from: '21', to: '20' })).toThrow(/--from=21 is after --to=20/);
    expect(() => parseReplayRequest({ from: '2026-11-20T11:00:00Z', to: '2026-11-20T10:00:00Z' })).toThrow(/not before --to/);
    expect(() => parseReplayRequest({ from: '2026-11-20T10:00:00Z', to: '2026-11-20T10:00:00Z' })).toThrow(/\[from, to\)/);
    // One offset is fine: both ends are inclusive.
    expect(parseReplayRequest({ from: '20', to: '20' }).from).toMatchObject({ offset: 20 });
  });

  it('refuses any target that is not a shadow table, the live table above all', () => {
    expect(() => parseReplayRequest({ ...base, target: 'telemetry' })).toThrow(/refusing target "telemetry"/);
    expect(() => parseReplayRequest({ ...base, target: 'system.users' })).toThrow(ReplayRequestError);
    expect(parseReplayRequest({ ...base, target: 'telemetry_shadow' }).target).toBe('telemetry_shadow');
  });

  it('normalizes partitions and checks the tenant', () => {
    expect(parseReplayRequest({ ...base, partitions: [2, '0', 2] }).partitions).toEqual([0, 2]);
    expect(() => parseReplayRequest({ ...base, partitions: [-1] })).toThrow(/--partition=-1/);
    expect(() => parseReplayRequest({ ...base, partitions: ['x'] })).toThrow(/--partition=x/);
    expect(() => parseReplayRequest({ ...base, partitions: [] })).toThrow(/at least one/);
    expect(parseReplayRequest({ ...base, tenant: 'acme' }).tenant).toBe('acme');
    expect(() => parseReplayRequest({ ...base, tenant: '' })).toThrow(/--tenant/);
    expect(() => parseReplayRequest('nope')).toThrow(/JSON object/);
  });
});
