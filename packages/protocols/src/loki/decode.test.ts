import { describe, expect, it } from 'vitest';
import { compress } from 'snappyjs';
import { protoType } from '../proto.ts';
import { decodeLokiPush, lokiEncoding, parseLabelSet } from './decode.ts';

const NOW = Date.parse('2026-12-01T10:00:00Z');
const NS = `${NOW}000001`;
const opts = { now: NOW, maxEntries: 100, maxBytes: 1 << 20, parseJson: (t: string) => JSON.parse(t) as unknown };

describe('Loki push', () => {
  it('reads the JSON body Promtail and Alloy send, with structured metadata', () => {
    const body = JSON.stringify({
      streams: [
        { stream: { service_name: 'api', env: 'prod', level: 'warn' }, values: [[NS, 'slow query', { trace_id: 'abc' }], [`${NOW + 1}000000`, 'second']] },
        { stream: { job: 'varlogs' }, values: [[NS, 'from a job']] },
      ],
    });
    const out = decodeLokiPush(Buffer.from(body), 'json', opts);
    expect(out.refusals).toEqual([]);
    expect(out.origins).toEqual([0, 1, 2]);
    expect(out.entries[0]).toEqual({
      type: 'log',
      timestamp: NOW,
      app: 'api',
      labels: { service_name: 'api', env: 'prod', level: 'warn' },
      data: { message: 'slow query', level: 'warn', structured_metadata: { trace_id: 'abc' }, time_unix_nano: NS },
    });
    expect(out.entries[1]!.timestamp).toBe(NOW + 1);
    expect(out.entries[2]).toMatchObject({ app: 'varlogs', data: { message: 'from a job' } });
  });

  it('reads snappy-compressed protobuf (encoded with protobufjs and snappyjs)', () => {
    const type = protoType(['loki/push.proto'], 'logproto.PushRequest');
    const msg = type.fromObject({
      streams: [{ labels: '{app="web", path="/a \\"b\\""}', entries: [{ timestamp: { seconds: String(NOW / 1000), nanos: 1 }, line: 'hello', structuredMetadata: [{ name: 'user', value: 'u1' }] }] }],
    });
    const body = compress(type.encode(msg).finish());
    const out = decodeLokiPush(body, 'protobuf', opts);
    expect(out.entries).toEqual([{ type: 'log', timestamp: NOW, app: 'web', labels: { app: 'web', path: '/a "b"' }, data: { message: 'hello', structured_metadata: { user: 'u1' }, time_unix_nano: NS } }]);
  });

  it('refuses an uncompressed protobuf body and a bad JSON shape whole; a bad timestamp per entry', () => {
    expect(() => decodeLokiPush(Buffer.from([0x0a, 0x02, 0x0a, 0x00]), 'protobuf', opts)).toThrow(expect.objectContaining({ code: expect.stringMatching(/INGEST_ERR_INVALID_(SNAPPY|PROTOBUF)/) }));
    expect(() => decodeLokiPush(Buffer.from('{"streams": 3}'), 'json', opts)).toThrow(expect.objectContaining({ code: 'INGEST_ERR_INVALID_PROTOBUF' }));
    const out = decodeLokiPush(Buffer.from(JSON.stringify({ streams: [{ stream: { app: 'a' }, values: [['yesterday', 'x'], [NS, 'y']] }] })), 'json', opts);
    expect(out.refusals.map((r) => [r.item, r.code])).toEqual([[0, 'INGEST_ERR_ENTRY_UNDECODABLE']]);
    expect(out.origins).toEqual([1]);
  });

  it('refuses a snappy body that declares more than the limit before inflating it', () => {
    const big = compress(Buffer.alloc(4096, 0x61));
    expect(() => decodeLokiPush(big, 'protobuf', { ...opts, maxBytes: 1024 })).toThrow(expect.objectContaining({ code: 'INGEST_ERR_BODY_TOO_LARGE' }));
  });

  it('parses Prometheus label sets', () => {
    expect(parseLabelSet('{}')).toEqual({});
    expect(parseLabelSet('{a="1", b="x\\ny",}')).toEqual({ a: '1', b: 'x\ny' });
    expect(typeof parseLabelSet('{a=1}')).toBe('string');
    expect(typeof parseLabelSet('a="1"')).toBe('string');
    expect(lokiEncoding('application/x-protobuf')).toBe('protobuf');
    expect(lokiEncoding('text/plain')).toBeUndefined();
  });
});
