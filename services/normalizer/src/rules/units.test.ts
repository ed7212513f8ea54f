import { readFileSync } from 'node:fs';
import { describe, it, expect } from 'vitest';
import { acceptedUnits, convertUnit, lookupUnit } from './units.ts';

describe('convertUnit', () => {
  it.each([
    // durations → s
    [1500, 'ms', 1.5, 's'],
    [1, 'ns', 1e-9, 's'],
    [250, 'us', 0.00025, 's'],
    [250, 'µs', 0.00025, 's'],
    [250, 'μs', 0.00025, 's'],
    [3, 's', 3, 's'],
    [2, 'm', 120, 's'],
    [2, 'min', 120, 's'],
    [1.5, 'h', 5400, 's'],
    [1, 'd', 86400, 's'],
    [10, 'Milliseconds', 0.01, 's'],
    [2, 'SECONDS', 2, 's'],
    // sizes → bytes
    [2, 'KiB', 2048, 'bytes'],
    [2, 'KB', 2000, 'bytes'],
    [2, 'kB', 2000, 'bytes'],
    [1, 'MB', 1e6, 'bytes'],
    [1, 'MiB', 1048576, 'bytes'],
    [1, 'GB', 1e9, 'bytes'],
    [1, 'GiB', 1073741824, 'bytes'],
    [1, 'TB', 1e12, 'bytes'],
    [1, 'TiB', 1099511627776, 'bytes'],
    [3, 'B', 3, 'bytes'],
    [3, 'By', 3, 'bytes'],
    [3, 'KiBy', 3072, 'bytes'],
    [3, 'bytes', 3, 'bytes'],
    [16, 'bit', 2, 'bytes'],
    [8, 'Mbit', 1e6, 'bytes'],
    [8, 'Kibit', 1024, 'bytes'],
    [1, 'Gbit', 1.25e8, 'bytes'],
    // rates → bytes/s
    [1, 'bytes/s', 1, 'bytes/s'],
    [1, 'B/s', 1, 'bytes/s'],
    [2, 'KiB/s', 2048, 'bytes/s'],
    [3, 'MB/s', 3e6, 'bytes/s'],
    [8, 'Mbit/s', 1e6, 'bytes/s'],
    [100, 'Mbps', 1.25e7, 'bytes/s'],
    [8, 'bps', 1, 'bytes/s'],
    // ratios
    [50, '%', 0.5, 'ratio'],
    [12.5, 'percent', 0.125, 'ratio'],
    [0.3, 'ratio', 0.3, 'ratio'],
    // frequencies, temperatures
    [2.4, 'GHz', 2.4e9, 'hz'],
    [50, 'Hz', 50, 'hz'],
    [21.5, 'celsius', 21.5, 'celsius'],
    [21.5, '°C', 21.5, 'celsius'],
    // unitless
    [7, '', 7, ''],
    [7, 'count', 7, ''],
    [7, '1', 7, ''],
    [7, '{requests}', 7, ''],
  ])('%d %s → %d %s', (value, unit, expected, canonical) => {
    const c = convertUnit(value, unit);
    expect(c.ok).toBe(true);
    if (!c.ok) return;
    expect(c.unit).toBe(canonical);
    expect(c.value).toBeCloseTo(expected, 12);
    expect(c.value / expected).toBeCloseTo(1, 12);
  });

  it('is exact for the common sub-unit divisions', () => {
    expect(convertUnit(1500, 'ms')).toEqual({ ok: true, value: 1.5, unit: 's', converted: true });
    expect(convertUnit(50, '%')).toEqual({ ok: true, value: 0.5, unit: 'ratio', converted: true });
    expect(convertUnit(5, 's')).toEqual({ ok: true, value: 5, unit: 's', converted: false });
  });

  it.each([
    ['Mb', /ambiguous.*Mbit/],
    ['mb', /ambiguous/],
    ['b', /ambiguous/],
    ['M', /ambiguous/],
    ['F', /Fahrenheit/],
    ['furlong', /not a known unit; use one of ns, us, ms/],
    ['MS', /not a known unit/],
    ['constructor', /not a known unit/],
    ['__proto__', /not a known unit/],
    ['x'.repeat(65), /longer than 64/],
    ['{a{b}}', /not a known unit/],
  ])('refuses %s', (unit, why) => {
    const c = convertUnit(1, unit);
    expect(c.ok).toBe(false);
    if (c.ok) return;
    expect(c.reason).toMatch(why);
  });

  it('treats symbols case-sensitively: mB and MB differ', () => {
    expect(typeof lookupUnit('MB')).toBe('object');
    expect(typeof lookupUnit('mB')).toBe('string');
  });
});

describe('README unit table', () => {
  it('lists every accepted spelling (rates are documented as "<size>/s")', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const missing: string[] = [];
    for (const unit of acceptedUnits().keys()) {
      if (unit === '' || unit.endsWith('/s')) continue;
      if (!readme.includes(`\`${unit}\``)) missing.push(unit);
    }
    expect(missing).toEqual([]);
  });
});
