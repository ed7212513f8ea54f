import { describe, expect, it } from 'vitest';
import type { NormalizedEntry } from '@ingest/contracts';
import { ROW_COLUMNS, decodeRow, positionTail, positionedBody, encodeRow, encodedRowTs, isEncodedRow, toRow } from './rows.ts';

const entry: NormalizedEntry = {
  id: 'e-1', tenant: 'acme', type: 'metric', ts: 1_764_547_200_123, receivedAt: 1_764_547_201_000, app: 'web', source: 'host-1',
  labels: { region: 'eu "west"' }, name: 'latency', value: 0.125, unit: 's', level: '', message: 'line\nbreak', data: { p: [1, 2] },
};

describe('encoded rows', () => {
  it('decode to exactly the row toRow builds, position included', () => {
    const value = Buffer.from(encodeRow(entry));
    expect(decodeRow(value, 2, 41)).toEqual(toRow(entry, 2, 41));
  });

  it('are one line: a newline in any field is escaped, so rows can be joined with newlines', () => {
    expect(encodeRow(entry)).not.toContain('\n');
  });

  it('carry the event time where the loader reads it without parsing', () => {
    const value = Buffer.from(encodeRow(entry));
    expect(isEncodedRow(value)).toBe(true);
    expect(encodedRowTs(value)).toBe(entry.ts);
    expect(encodedRowTs(Buffer.from('[12x,"a"]'))).toBeNaN();
    expect(encodedRowTs(Buffer.from('[,"a"]'))).toBeNaN();
    expect(encodedRowTs(Buffer.from('{"ts":12,'))).toBeNaN();
  });

  it('an older log message (a NormalizedEntry document) is not taken for a row', () => {
    expect(isEncodedRow(Buffer.from(JSON.stringify(entry)))).toBe(false);
    expect(isEncodedRow(Buffer.from('[1'))).toBe(false);
  });

  it('non-finite values become null, as JSON would have them', () => {
    const r = decodeRow(Buffer.from(encodeRow({ ...entry, value: Number.NaN })), 0, 0);
    expect(r.value).toBeNull();
  });

  it('gain their log position by bytes alone, as JSONCompactEachRow lines of every column', () => {
    const other = { ...entry, id: 'e-2', message: 'ünïcode ✓', labels: {} };
    const body = positionedBody([
      { row: Buffer.from(encodeRow(entry)), tail: positionTail(5, 9) },
      { row: Buffer.from(encodeRow(other)), tail: positionTail(0, 2 ** 40) },
    ]).toString('utf8');
    const lines = body.split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[2]).toBe('');
    const first = toRow(entry, 5, 9);
    const second = toRow(other, 0, 2 ** 40);
    expect(JSON.parse(lines[0]!)).toEqual(ROW_COLUMNS.map((c) => first[c]));
    expect(JSON.parse(lines[1]!)).toEqual(ROW_COLUMNS.map((c) => second[c]));
  });
});
