import { describe, expect, it } from 'vitest';
import { labelKey, linesToEntries, metricName, parseLineProtocol, parsePrecision } from './line-protocol.ts';

describe('parseLineProtocol', () => {
  it('parses what Telegraf sends: tags, float/int/uint/bool/string fields, ns timestamps', () => {
    const body = [
      'cpu,cpu=cpu0,host=web-1 usage_idle=97.5,usage_user=2.25 1700000000123456789',
      'mem,host=web-1 used=123456i,free=42u,ok=true,state="running fine" 1700000000000000000',
      '# a comment',
      '',
    ].join('\n');
    const { points, errors } = parseLineProtocol(body, 'ns');
    expect(errors).toEqual([]);
    expect(points).toHaveLength(2);
    expect(points[0]).toMatchObject({ measurement: 'cpu', tags: { cpu: 'cpu0', host: 'web-1' }, fields: { usage_idle: 97.5, usage_user: 2.25 }, timestampMs: 1_700_000_000_123 });
    expect(points[1]).toMatchObject({ fields: { used: 123456, free: 42, ok: true, state: 'running fine' }, timestampMs: 1_700_000_000_000 });
  });

  it('applies escapes in measurement, tags, field keys and string values', () => {
    const { points, errors } = parseLineProtocol('disk\\ io,path=/var/lib\\ data,dev\\=x=sd\\,a read\\ ops=1,msg="say \\"hi\\" \\\\o/" 1', 's');
    expect(errors).toEqual([]);
    expect(points[0]).toMatchObject({ measurement: 'disk io', tags: { path: '/var/lib data', 'dev=x': 'sd,a' }, fields: { 'read ops': 1, msg: 'say "hi" \\o/' } });
  });

  it('converts every precision to milliseconds', () => {
    const at = (line: string, p: Parameters<typeof parseLineProtocol>[1]) => parseLineProtocol(line, p).points[0]?.timestampMs;
    expect(at('m v=1 1700000000', 's')).toBe(1_700_000_000_000);
    expect(at('m v=1 1700000000123', 'ms')).toBe(1_700_000_000_123);
    expect(at('m v=1 1700000000123456', 'us')).toBe(1_700_000_000_123);
    expect(at('m v=1 1700000000123456789', 'ns')).toBe(1_700_000_000_123);
    expect(at('m v=1 28333333', 'm')).toBe(28_333_333 * 60_000);
    expect(at('m v=1', 'ns')).toBeUndefined();
    expect(parsePrecision('u')).toBe('us');
    expect(parsePrecision(undefined)).toBe('ns');
    expect(parsePrecision('weeks')).toBeUndefined();
  });

  it('reports bad lines with their numbers and keeps the good ones', () => {
    const { points, errors } = parseLineProtocol('ok v=1\nnofields\nbad v=abc\nalso,t=1 v=2i\nm v=1 12x', 'ns');
    expect(points.map((p) => p.measurement)).toEqual(['ok', 'also']);
    expect(errors.map((e) => e.line)).toEqual([2, 3, 5]);
  });

  it('stops at maxLines', () => {
    const { points, errors } = parseLineProtocol('a v=1\nb v=1\nc v=1', 'ns', { maxLines: 2 });
    expect(points).toHaveLength(2);
    expect(errors).toHaveLength(1);
  });
});

describe('linesToEntries', () => {
  it('makes one metric per numeric field named measurement.field (just measurement for "value"), tags as labels', () => {
    const { points } = parseLineProtocol('cpu,host=a usage=1.5,value=7i,up=true,note="x" 1700000000000000000', 'ns');
    const { entries, skippedFields } = linesToEntries(points, { app: 'telegraf' });
    expect(skippedFields).toBe(1);
    expect(entries.map((e) => e.data)).toEqual([
      { name: 'cpu.usage', value: 1.5 },
      { name: 'cpu', value: 7 },
      { name: 'cpu.up', value: 1 },
    ]);
    for (const e of entries) expect(e).toMatchObject({ type: 'metric', app: 'telegraf', timestamp: 1_700_000_000_000, labels: { host: 'a' } });
  });

  it('gives a timestamped point a deterministic id (a resend dedups) and an untimed one none', () => {
    const line = 'cpu,host=a,zone=z usage=1 1700000000000000001';
    const a = linesToEntries(parseLineProtocol(line, 'ns').points, { app: 't' }).entries[0]!;
    const b = linesToEntries(parseLineProtocol('cpu,zone=z,host=a usage=1 1700000000000000001', 'ns').points, { app: 't' }).entries[0]!;
    const c = linesToEntries(parseLineProtocol('cpu,host=a,zone=z usage=1 1700000000000000002', 'ns').points, { app: 't' }).entries[0]!;
    expect(a.id).toMatch(/^lp-[0-9a-f]{32}$/);
    expect(b.id).toBe(a.id);
    expect(c.id).not.toBe(a.id);
    const untimed = linesToEntries(parseLineProtocol('cpu usage=1', 'ns').points, { app: 't', now: 5 }).entries[0]!;
    expect(untimed.id).toBeUndefined();
    expect(untimed.timestamp).toBe(5);
  });

  it('rewrites names and label keys into what the normalizer accepts', () => {
    expect(metricName('net-if', 'bytes/recv')).toBe('net_if.bytes_recv');
    expect(metricName('9p', 'value')).toBe('_9p');
    expect(labelKey('host name')).toBe('host_name');
    expect(labelKey('1st')).toBe('_1st');
  });
});
