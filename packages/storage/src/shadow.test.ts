import { describe, expect, it } from 'vitest';
import { assertShadowTable, formatDay, isShadowTable, parseDay, rowKey } from './shadow.ts';

describe('shadow helpers', () => {
  it('parses UTC days to the partition key value', () => {
    expect(parseDay('2026-11-20')).toBe(20261120);
    expect(parseDay('20261120')).toBe(20261120);
    expect(parseDay('2024-02-29')).toBe(20240229);
    expect(parseDay('2026-02-29')).toMatch(/not a calendar day/);
    expect(parseDay('2026-11-20; DROP TABLE telemetry')).toMatch(/not a day/);
    expect(formatDay(20261120)).toBe('2026-11-20');
  });

  it('allows only shadow tables as replay targets', () => {
    expect(isShadowTable('telemetry_shadow')).toBe(true);
    expect(isShadowTable('telemetry')).toBe(false);
    expect(() => assertShadowTable('telemetry')).toThrow(/never the live table telemetry/);
  });

  it('keys a row by the whole sorting key', () => {
    expect(rowKey({ tenant_id: 'a', type: 'log', ts: 1, id: 'x' })).not.toBe(rowKey({ tenant_id: 'a', type: 'log', ts: 2, id: 'x' }));
  });
});
