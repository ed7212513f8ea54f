import { describe, expect, it } from 'vitest';
import { UsageError } from '../cli.ts';
import { ctl, fakeServer } from '../../test/cli-fakes.ts';
import { bucketTable } from './query.ts';
import { parseWhen } from '../cli.ts';

const NOW = Date.UTC(2026, 10, 20, 12, 30);

describe('ingestctl query --from/--to/--by', () => {
  it('reads RFC 3339 with a zone, a UTC date, now and relative times; refuses zone-less ones', () => {
    expect(parseWhen('2026-11-20T10:00:00Z', NOW, '--from')).toBe(Date.UTC(2026, 10, 20, 10));
    expect(parseWhen('2026-11-20T10:00:00+01:00', NOW, '--from')).toBe(Date.UTC(2026, 10, 20, 9));
    expect(parseWhen('2026-11-20', NOW, '--from')).toBe(Date.UTC(2026, 10, 20));
    expect(parseWhen('now', NOW, '--to')).toBe(NOW);
    expect(parseWhen('-2h', NOW, '--from')).toBe(NOW - 7_200_000);
    expect(() => parseWhen('2026-11-20T10:00:00', NOW, '--from')).toThrow(UsageError);
    expect(() => parseWhen('yesterday', NOW, '--from')).toThrow(/not a time/);
  });

  it('the table shows an hour with no entries as 0 · beside the hours that have some', () => {
    const s = bucketTable({
      table: 'telemetry', from: '2026-11-20T10:00:00.000Z', to: '2026-11-20T13:00:00.000Z', by: 'hour', tenant: null, type: null, truncated: false,
      rows: [
        { bucket: '2026-11-20T10:00:00.000Z', tenant: 'acme', type: 'log', entries: 300 },
        { bucket: '2026-11-20T12:00:00.000Z', tenant: 'acme', type: 'log', entries: 300 },
      ],
    });
    expect(s).toMatch(/2026-11-20T11:00:00\.000Z\s+acme\s+log\s+0 ·/);
    expect(s).toContain('total 600');
  });

  it('asks the sink writer with epoch-ms bounds and prints its rows; a 400 is a usage error', async () => {
    const sink = await fakeServer((route, url) => {
      if (route !== 'GET /admin/v1/count-buckets') return undefined;
      if (url.searchParams.get('tenant') === 'bad') return { status: 400, body: { error: { code: 'INGEST_ERR_INVALID_BODY', message: 'nope' } } };
      return { status: 200, body: { table: 'telemetry', from: new Date(Number(url.searchParams.get('from'))).toISOString(), to: new Date(Number(url.searchParams.get('to'))).toISOString(), by: url.searchParams.get('by'), tenant: null, type: null, truncated: false, rows: [] } };
    });
    try {
      const r = await ctl({ SINK_URL: sink.url }, 'query', '--count', '--from', '2026-11-20T10:00:00Z', '--to', '2026-11-20T12:00:00Z', '--by', 'day', '--json');
      expect(r.code).toBe(0);
      expect(JSON.parse(r.out)).toMatchObject({ from: '2026-11-20T10:00:00.000Z', to: '2026-11-20T12:00:00.000Z', by: 'day', rows: [] });
      expect(sink.seen[0]).toBe(`GET /admin/v1/count-buckets?from=${Date.UTC(2026, 10, 20, 10)}&to=${Date.UTC(2026, 10, 20, 12)}&by=day`);
      expect((await ctl({ SINK_URL: sink.url }, 'query', '--count', '--from=-1h', '--tenant', 'bad')).code).toBe(2);
      expect((await ctl({ SINK_URL: sink.url }, 'query', '--count', '--from', '2026-11-20T12:00:00Z', '--to', '2026-11-20T10:00:00Z')).code).toBe(2);
      expect((await ctl({ SINK_URL: sink.url }, 'query', '--count', '--since', '1h', '--from=-1h')).code).toBe(2);
    } finally {
      await sink.close();
    }
  });
});

describe('ingestctl sql', () => {
  it('prints rows, and exits 1 on a refused write, 2 on a failed statement', async () => {
    const sink = await fakeServer((route) => (route === 'POST /admin/v1/sql' ? { status: 200, body: { columns: [{ name: 'n', type: 'UInt64' }], rows: [['7']], truncated: false, elapsedMs: 3 } } : undefined));
    const refusing = await fakeServer(() => ({ status: 403, body: { error: { code: 'INGEST_ERR_SQL_REFUSED', message: 'ingestctl sql runs read-only statements only: DROP' } } }));
    const failing = await fakeServer(() => ({ status: 400, body: { error: { code: 'INGEST_ERR_SQL_FAILED', message: 'the statement failed: Unknown table' } } }));
    try {
      const ok = await ctl({ SINK_URL: sink.url }, 'sql', 'SELECT count() AS n FROM telemetry');
      expect(ok.code).toBe(0);
      expect(ok.out).toMatch(/^N\n7\n1 row in 3 ms$/);
      expect((await ctl({ SINK_URL: sink.url }, 'sql', 'SELECT 1', '--ndjson')).out).toBe('{"n":"7"}');
      const no = await ctl({ SINK_URL: refusing.url }, 'sql', 'DROP TABLE telemetry');
      expect([no.code, no.err]).toEqual([1, 'ingestctl sql: INGEST_ERR_SQL_REFUSED: ingestctl sql runs read-only statements only: DROP']);
      expect((await ctl({ SINK_URL: failing.url }, 'sql', 'SELECT x FROM nope')).code).toBe(2);
      expect((await ctl({ SINK_URL: sink.url }, 'sql')).code).toBe(2);
      expect((await ctl({ SINK_URL: 'http://127.0.0.1:9' }, 'sql', 'SELECT 1')).code).toBe(3);
    } finally {
      await Promise.all([sink.close(), refusing.close(), failing.close()]);
    }
  });
});
