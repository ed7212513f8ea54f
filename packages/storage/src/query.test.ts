import { describe, expect, it } from 'vitest';
import { IngestError } from '@ingest/contracts';
import { decodeCursor, encodeCursor, parseEntryQuery, parseQueryTime } from './query.ts';

const NOW = Date.parse('2026-11-20T12:00:00Z');

function refusal(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (e) {
    if (e instanceof IngestError) return { code: e.code, message: e.message };
    throw e;
  }
  throw new Error('not refused');
}

describe('parseEntryQuery', () => {
  it('reads every filter, repeatable labels, and defaults to 100 newest first', () => {
    const q = parseEntryQuery('type=log&app=api&from=-15m&to=2026-11-20T11:59:00Z&label.env=prod&label.zone=a&level=error&q=50%25+done&name=cpu&id=x1&limit=250', 'acme', NOW);
    expect(q).toEqual({
      tenant: 'acme',
      type: 'log',
      app: 'api',
      fromMs: NOW - 15 * 60_000,
      toMs: NOW - 60_000,
      labels: [['env', 'prod'], ['zone', 'a']],
      level: 'error',
      q: '50% done',
      name: 'cpu',
      id: 'x1',
      limit: 250,
      order: 'desc',
    });
    expect(parseEntryQuery('', 'acme', NOW)).toEqual({ tenant: 'acme', labels: [], limit: 100, order: 'desc' });
  });

  it('takes the tenant from its argument only; tenant parameters are ignored', () => {
    expect(parseEntryQuery('tenant=other&tenant_id=other', 'acme', NOW).tenant).toBe('acme');
  });

  it('refuses bad values with INGEST_ERR_INVALID_PARAMETER naming the choices', () => {
    expect(refusal(() => parseEntryQuery('type=foo', 't', NOW))).toEqual({ code: 'INGEST_ERR_INVALID_PARAMETER', message: expect.stringMatching(/log, metric, event, health, alert/) as unknown as string });
    expect(refusal(() => parseEntryQuery('limit=0', 't', NOW)).message).toMatch(/1 to 10000/);
    expect(refusal(() => parseEntryQuery('limit=10001', 't', NOW)).message).toMatch(/1 to 10000/);
    expect(refusal(() => parseEntryQuery('order=up', 't', NOW)).message).toMatch(/desc.*asc/);
    expect(refusal(() => parseEntryQuery('bogus=1', 't', NOW)).message).toMatch(/unknown; use type, app/);
    expect(refusal(() => parseEntryQuery('app=a&app=b', 't', NOW)).message).toMatch(/twice/);
    expect(refusal(() => parseEntryQuery('from=2026-11-20T10:00:00', 't', NOW)).message).toMatch(/RFC 3339 with a zone/);
    expect(refusal(() => parseEntryQuery('cursor=abc', 't', NOW)).message).toMatch(/cursor/);
    expect(refusal(() => parseEntryQuery(`q=${'x'.repeat(2000)}`, 't', NOW)).message).toMatch(/longer than/);
  });

  it('relative and absolute times', () => {
    expect(parseQueryTime('now', NOW, 'to')).toBe(NOW);
    expect(parseQueryTime('-2h', NOW, 'from')).toBe(NOW - 7_200_000);
    expect(parseQueryTime('1763640000000', NOW, 'from')).toBe(1763640000000);
    expect(parseQueryTime('2026-11-20T13:00:00+01:00', NOW, 'from')).toBe(NOW);
  });

  it('a cursor round-trips and is opaque', () => {
    const k = { tsMs: NOW, id: 'a"b', type: 'log' };
    const c = encodeCursor(k);
    expect(c).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeCursor(c)).toEqual(k);
  });
});
