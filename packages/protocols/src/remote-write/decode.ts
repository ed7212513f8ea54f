import type { WireEntry } from '@ingest/contracts';
import { decodeWith } from '../decode-proto.ts';
import { LabelSet, metricName } from '../labels.ts';
import { protoType } from '../proto.ts';
import { push } from '../push.ts';
import { unsnappy } from '../snappy.ts';
import { DEFAULT_LABEL_LIMITS, emptyDecoded, type Decoded, type DecodeOptions } from '../types.ts';

const writeRequest = () => protoType(['prometheus/remote.proto'], 'prometheus.WriteRequest');

/**
 * Prometheus's staleness marker: a NaN with this exact bit pattern (value.StaleNaN), written when a
 * series disappears. It is a signal for the query engine, not a sample.
 */
const STALE_NAN_BITS = 0x7ff0000000000002n;

const scratch = new DataView(new ArrayBuffer(8));

/** Whether a double is the staleness marker; read from the bytes, since NaN payloads need not survive arithmetic. */
export function isStaleMarker(v: number): boolean {
  if (!Number.isNaN(v)) return false;
  scratch.setFloat64(0, v);
  return scratch.getBigUint64(0) === STALE_NAN_BITS;
}

type Obj = Record<string, unknown>;

/**
 * A remote write 1.0 body (snappy-compressed `prometheus.WriteRequest`) → metric entries, one per
 * sample: `__name__` → name, the other labels → labels (`job` also → app), the value, the
 * timestamp (ms). Staleness markers are skipped (not errors: Prometheus sends one whenever a series
 * ends); other NaN and ±Inf samples are refused, since a stored metric value is a finite number.
 * Counters (by the request's metadata) get kind counter. The item of a sample is its 0-based
 * place among the request's samples; a series' native histograms (not remote write 1.0) are
 * refused as one item each, after its samples.
 */
export function decodeRemoteWrite(body: Uint8Array, opts: DecodeOptions & { maxBytes: number }): Decoded {
  const inflated = unsnappy(body, opts.maxBytes);
  const req = decodeWith(writeRequest(), inflated);
  const counters = new Set<string>();
  for (const m of list(req, 'metadata')) if (m.type === 1 && typeof m.metricFamilyName === 'string') counters.add(m.metricFamilyName);
  const out = emptyDecoded();
  out.bytes = inflated.byteLength;
  let item = 0;
  for (const ts of list(req, 'timeseries')) {
    const labels = list(ts, 'labels').map((l) => [typeof l.name === 'string' ? l.name : '', typeof l.value === 'string' ? l.value : ''] as const);
    const name = labels.find(([k]) => k === '__name__')?.[1] ?? '';
    const samples = list(ts, 'samples');
    const histograms = Array.isArray(ts.histograms) ? ts.histograms.length : 0;
    if (name === '') {
      for (let i = 0; i < samples.length + histograms; i++) out.refusals.push({ item: item + i, code: 'INGEST_ERR_ENTRY_UNDECODABLE', message: 'the series has no __name__ label', raw: { labels: Object.fromEntries(labels), sample: samples[i] ?? 'native histogram' } });
      item += samples.length + histograms;
      continue;
    }
    const set = new LabelSet(opts.labelLimits ?? DEFAULT_LABEL_LIMITS);
    let app: string | undefined;
    for (const [k, v] of labels) {
      if (k === '__name__') continue;
      if (k === 'job' && v !== '') app = v;
      set.add(k, v);
    }
    const family = name.replace(/_(total|sum|count|bucket)$/, '');
    const kind = counters.has(name) || counters.has(family) ? 'counter' : 'gauge';
    for (const s of samples) {
      const value = typeof s.value === 'number' ? s.value : 0;
      if (isStaleMarker(value)) skip(out, 'stale_marker');
      // Prometheus's "no observation" (a summary's quantile before its first sample, 0/0): skipped
      // and counted. Refusing it would make Prometheus drop and log as failed every batch holding one.
      else if (Number.isNaN(value)) skip(out, 'nan');
      else if (!Number.isFinite(value)) out.refusals.push({ item, code: 'INGEST_ERR_ENTRY_VALUE', message: `${name}: the sample is ${String(value)}; only finite values are stored (NaN and staleness markers are skipped)`, raw: { labels: Object.fromEntries(labels), value: String(value), timestamp: s.timestamp } });
      else {
        const data: Record<string, unknown> = { name: metricName(name), value, kind };
        if (set.hasOverflow) data.attributes = set.overflow;
        const entry: WireEntry = { type: 'metric', timestamp: Number(typeof s.timestamp === 'string' ? s.timestamp : 0), data };
        if (app !== undefined) entry.app = app;
        if (!set.empty) entry.labels = set.labels;
        push(out, entry, item, opts);
      }
      item++;
    }
    for (let i = 0; i < histograms; i++) {
      out.refusals.push({ item, code: 'INGEST_ERR_ENTRY_UNDECODABLE', message: `${name}: native histograms are not part of remote write 1.0 and are not stored; send classic histograms (_bucket, _sum, _count)`, raw: { labels: Object.fromEntries(labels), histogram: i } });
      item++;
    }
  }
  return out;
}

function list(o: Obj | undefined, key: string): Obj[] {
  const v = o?.[key];
  return Array.isArray(v) ? (v as Obj[]) : [];
}

function skip(out: Decoded, reason: string): void {
  out.skipped++;
  out.skippedBy[reason] = (out.skippedBy[reason] ?? 0) + 1;
}
