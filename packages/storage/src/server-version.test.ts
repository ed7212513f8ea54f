import { describe, expect, it } from 'vitest';
import { MIN_CLICKHOUSE_VERSION, UnsupportedClickHouseVersionError, versionAtLeast } from './server-version.ts';

describe('versionAtLeast', () => {
  it('compares numerically part by part, not as strings', () => {
    expect(versionAtLeast('22.10.1', '22.2')).toBe(true);
    expect(versionAtLeast('22.2.1.2139', '22.2')).toBe(true);
    expect(versionAtLeast('22.1.3.7', '22.2')).toBe(false);
    expect(versionAtLeast('18.16.1', '22.2')).toBe(false);
    expect(versionAtLeast('25.8.1.1-lts', '22.2')).toBe(true);
  });
  it('an unreadable version is not taken as new enough', () => {
    expect(versionAtLeast('', '22.2')).toBe(false);
    expect(versionAtLeast('unknown', '22.2')).toBe(false);
  });
});

describe('UnsupportedClickHouseVersionError', () => {
  it('names the version found and the one needed', () => {
    const e = new UnsupportedClickHouseVersionError('18.16.1', 'http://127.0.0.1:8123');
    expect(e.message).toContain('18.16.1');
    expect(e.message).toContain(MIN_CLICKHOUSE_VERSION);
  });
});
