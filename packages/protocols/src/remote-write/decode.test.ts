import { describe, expect, it } from 'vitest';
import { compress } from 'snappyjs';
import { protoType } from '../proto.ts';
import { decodeRemoteWrite, isStaleMarker } from './decode.ts';

const NOW = Date.parse('2026-12-01T10:00:00Z');
const opts = { now: NOW, maxEntries: 100, maxBytes: 1 << 20 };
const type = protoType(['prometheus/remote.proto'], 'prometheus.WriteRequest');
const MARK = 12345.678;

/** A WriteRequest as Prometheus sends it: protobuf, then snappy; MARK samples become staleness markers. */
function body(req: Record<string, unknown>): Uint8Array {
  const pb = Buffer.from(type.encode(type.fromObject(req)).finish());
  const mark = Buffer.alloc(8);
  mark.writeDoubleLE(MARK);
  const stale = Buffer.from(new BigUint64Array([0x7ff0000000000002n]).buffer);
  for (let i = pb.indexOf(mark); i >= 0; i = pb.indexOf(mark, i + 8)) stale.copy(pb, i);
  return compress(new Uint8Array(pb));
}

describe('remote write 1.0', () => {
  it('maps samples to metric entries: __name__, labels, job as app, value, ms timestamp, counters by metadata', () => {
    const out = decodeRemoteWrite(
      body({
        timeseries: [
          { labels: [{ name: '__name__', value: 'http_requests_total' }, { name: 'job', value: 'api' }, { name: 'code', value: '200' }], samples: [{ value: 7, timestamp: NOW }, { value: 9, timestamp: NOW + 15_000 }] },
          { labels: [{ name: '__name__', value: 'up' }, { name: 'instance', value: 'h:9100' }], samples: [{ value: 1, timestamp: NOW }] },
        ],
        metadata: [{ type: 1, metricFamilyName: 'http_requests_total' }],
      }),
      opts,
    );
    expect(out.refusals).toEqual([]);
    expect(out.entries).toEqual([
      { type: 'metric', timestamp: NOW, app: 'api', labels: { job: 'api', code: '200' }, data: { name: 'http_requests_total', value: 7, kind: 'counter' } },
      { type: 'metric', timestamp: NOW + 15_000, app: 'api', labels: { job: 'api', code: '200' }, data: { name: 'http_requests_total', value: 9, kind: 'counter' } },
      { type: 'metric', timestamp: NOW, labels: { instance: 'h:9100' }, data: { name: 'up', value: 1, kind: 'gauge' } },
    ]);
  });

  it('skips staleness markers and NaN samples (counted by reason), refuses Inf samples and nameless series, per sample', () => {
    const out = decodeRemoteWrite(
      body({
        timeseries: [
          { labels: [{ name: '__name__', value: 'g' }], samples: [{ value: MARK, timestamp: NOW }, { value: Number.NaN, timestamp: NOW }, { value: Number.POSITIVE_INFINITY, timestamp: NOW }, { value: 2, timestamp: NOW }] },
          { labels: [{ name: 'job', value: 'x' }], samples: [{ value: 1, timestamp: NOW }] },
        ],
      }),
      opts,
    );
    expect(out.skipped).toBe(2);
    expect(out.skippedBy).toEqual({ stale_marker: 1, nan: 1 });
    expect(out.entries.map((e) => e.data.value)).toEqual([2]);
    expect(out.origins).toEqual([3]);
    expect(out.refusals.map((r) => [r.item, r.code])).toEqual([
      [2, 'INGEST_ERR_ENTRY_VALUE'],
      [4, 'INGEST_ERR_ENTRY_UNDECODABLE'],
    ]);
    expect(isStaleMarker(Number.NaN)).toBe(false);
  });

  it('refuses a body that is not snappy, or not a WriteRequest', () => {
    expect(() => decodeRemoteWrite(Buffer.from('plain text, not snappy at all'), opts)).toThrow(expect.objectContaining({ code: expect.stringMatching(/INGEST_ERR_INVALID_(SNAPPY|PROTOBUF)/) }));
    expect(() => decodeRemoteWrite(compress(new Uint8Array([0x0a, 0xff, 0xff, 0xff, 0x0f])), opts)).toThrow(expect.objectContaining({ code: 'INGEST_ERR_INVALID_PROTOBUF' }));
  });
});
