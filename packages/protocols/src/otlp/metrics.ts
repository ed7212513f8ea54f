import type { WireEntry } from '@ingest/contracts';
import { metricName } from '../labels.ts';
import { emptyDecoded, type Decoded, type DecodeOptions } from '../types.ts';
import { push } from '../push.ts';
import { labelsOf, resourceContext, withLabels, type ResourceContext } from './common.ts';
import { decodeOtlp, list, nanosToMs, obj, OTLP_TYPES, str, type Obj, type OtlpEncoding } from './decode.ts';

const SIZES = ['By', 'kBy', 'KBy', 'KiBy', 'MBy', 'MiBy', 'GBy', 'GiBy', 'TBy', 'TiBy', 'bit', 'kbit', 'Kibit', 'Mbit', 'Mibit', 'Gbit', 'Gibit', 'Tbit', 'Tibit'];

/**
 * The UCUM units whose spelling means the same in the normalizer's unit table (which converts them
 * to seconds, bytes, bytes/s, ratio, hz, celsius). Listed rather than passed through, because some
 * UCUM symbols mean something else there: UCUM `m` is the metre, the table's `m` a minute.
 */
const UCUM_IN_TABLE: ReadonlySet<string> = new Set(['ns', 'us', 'ms', 's', 'min', 'h', 'd', '%', 'Cel', 'Hz', 'kHz', 'MHz', 'GHz', ...SIZES, ...SIZES.map((u) => `${u}/s`)]);

/**
 * UCUM → the unit table: annotations (`{request}`) carry no unit, `1` is unitless, the units of
 * UCUM_IN_TABLE convert; any other unit (m, W, J, 1/s, {packet}/s) is stored unitless rather than
 * refused or misread, its UCUM spelling kept in data.otel_unit.
 */
export function ucumUnit(unit: string): string {
  const stripped = unit.replace(/\{[^}]*\}/g, '').trim();
  return UCUM_IN_TABLE.has(stripped) ? stripped : '';
}

/** Bucket arrays kept in data only up to this many bytes of JSON: half of the normalizer's data bound. */
const MAX_BUCKET_JSON = 8 * 1024;

const AGGREGATION_TEMPORALITY = ['unspecified', 'delta', 'cumulative'];

/** Bit 0 of a data point's flags: no value was recorded (a staleness marker). */
const FLAG_NO_RECORDED_VALUE = 1;

/** A uint64/int64 held as a decimal string: the number, and the exact digits when a double cannot hold them. */
function integer(s: unknown): { value: number; exact?: string } {
  const text = typeof s === 'string' ? s : '0';
  const value = Number(text);
  return Number.isSafeInteger(value) ? { value } : { value, exact: text };
}

interface MetricContext {
  ctx: ResourceContext;
  name: string;
  unit: string;
  otelUnit: string;
  scope: string;
  opts: DecodeOptions;
  out: Decoded;
}

/**
 * ExportMetricsServiceRequest → metric entries. Gauge and sum points → one entry each (monotonic
 * sums as kind counter); histogram, exponential histogram and summary points → `<name>.count`,
 * `<name>.sum` and, where present, `<name>.min` / `<name>.max`, with the bucket (or quantile) data
 * in the count entry's data while it fits. Point attributes and resource attributes → labels.
 * The item of a point is its 0-based place among the request's data points.
 */
export function decodeOtlpMetrics(body: Uint8Array, encoding: OtlpEncoding, opts: DecodeOptions & { parseJson: (text: string) => unknown }): Decoded {
  const req = decodeOtlp(OTLP_TYPES.metricsRequest(), body, encoding, opts.parseJson);
  const out = emptyDecoded();
  let item = 0;
  for (const rm of list(req, 'resourceMetrics')) {
    const ctx = resourceContext(rm);
    for (const sm of list(rm, 'scopeMetrics')) {
      const scope = str(obj(sm, 'scope'), 'name');
      for (const metric of list(sm, 'metrics')) {
        const otelUnit = str(metric, 'unit');
        const m: MetricContext = { ctx, name: metricName(str(metric, 'name')), unit: ucumUnit(otelUnit), otelUnit, scope, opts, out };
        const kind = typeof metric.data === 'string' ? metric.data : '';
        const body = obj(metric, kind);
        for (const point of list(body, 'dataPoints')) {
          if (kind === 'gauge' || kind === 'sum') numberPoint(m, point, kind === 'sum' ? body : undefined, item);
          else if (kind === 'histogram') histogramPoint(m, point, body, item);
          else if (kind === 'exponentialHistogram') exponentialPoint(m, point, body, item);
          else if (kind === 'summary') summaryPoint(m, point, item);
          item++;
        }
      }
    }
  }
  return out;
}

function base(m: MetricContext, point: Obj, name: string, value: number, unit: string, kind: 'gauge' | 'counter', extra: Record<string, unknown> = {}): WireEntry {
  const timeNs = str(point, 'timeUnixNano');
  const data: Record<string, unknown> = { name, value, kind };
  if (unit !== '') data.unit = unit;
  if (m.otelUnit !== '' && m.otelUnit !== unit) data.otel_unit = m.otelUnit;
  const start = str(point, 'startTimeUnixNano');
  if (start !== '' && start !== '0') data.start_time_unix_nano = start;
  if (timeNs !== '' && timeNs !== '0') data.time_unix_nano = timeNs;
  if (m.scope !== '') data.scope = m.scope;
  Object.assign(data, extra);
  const entry: WireEntry = { type: 'metric', timestamp: nanosToMs(timeNs) || m.opts.now, data };
  if (m.ctx.app !== undefined) entry.app = m.ctx.app;
  return withLabels(entry, labelsOf(m.ctx, list(point, 'attributes'), m.opts));
}

function noValue(m: MetricContext, point: Obj, item: number): boolean {
  const flags = typeof point.flags === 'number' ? point.flags : 0;
  if ((flags & FLAG_NO_RECORDED_VALUE) === 0) return false;
  m.out.refusals.push({ item, code: 'INGEST_ERR_ENTRY_UNDECODABLE', message: `data point ${item} of ${m.name} is flagged "no recorded value" (a staleness marker); it carries no value to store`, raw: { metric: m.name, point } });
  return true;
}

function temporality(body: Obj | undefined): string | undefined {
  const t = body?.aggregationTemporality;
  return typeof t === 'number' ? AGGREGATION_TEMPORALITY[t] : undefined;
}

function numberPoint(m: MetricContext, point: Obj, sum: Obj | undefined, item: number): void {
  if (noValue(m, point, item)) return;
  let value: number;
  const extra: Record<string, unknown> = {};
  if (point.value === 'asInt') {
    const n = integer(point.asInt);
    value = n.value;
    // The column is a double; the exact digits of an integer beyond 2^53 are kept beside it.
    if (n.exact !== undefined) extra.value_exact = n.exact;
  } else if (point.value === 'asDouble' && typeof point.asDouble === 'number') {
    value = point.asDouble;
  } else {
    m.out.refusals.push({ item, code: 'INGEST_ERR_ENTRY_UNDECODABLE', message: `data point ${item} of ${m.name} has no value (neither asDouble nor asInt)`, raw: { metric: m.name, point } });
    return;
  }
  if (!Number.isFinite(value)) {
    m.out.refusals.push({ item, code: 'INGEST_ERR_ENTRY_VALUE', message: `data point ${item} of ${m.name} is ${String(value)}; a metric value must be a finite number`, raw: { metric: m.name, point } });
    return;
  }
  const monotonic = sum?.isMonotonic === true;
  if (sum !== undefined) {
    extra.temporality = temporality(sum);
    extra.monotonic = monotonic;
  }
  push(m.out, base(m, point, m.name, value, m.unit, monotonic ? 'counter' : 'gauge', extra), item, m.opts);
}

/** count, sum, min, max of a distribution point; `details` goes into the count entry's data. */
function distribution(m: MetricContext, point: Obj, item: number, counterKind: 'gauge' | 'counter', details: Record<string, unknown>): void {
  if (noValue(m, point, item)) return;
  const count = integer(point.count);
  const countExtra: Record<string, unknown> = {};
  if (count.exact !== undefined) countExtra.value_exact = count.exact;
  const json = JSON.stringify(details);
  if (json.length <= MAX_BUCKET_JSON) Object.assign(countExtra, details);
  else countExtra.buckets_dropped = `bucket data of ${json.length} bytes is over the ${MAX_BUCKET_JSON}-byte bound`;
  push(m.out, base(m, point, `${m.name}.count`, count.value, '', counterKind, countExtra), item, m.opts);
  for (const stat of ['sum', 'min', 'max'] as const) {
    const v = point[stat];
    if (typeof v !== 'number') continue;
    if (!Number.isFinite(v)) {
      m.out.refusals.push({ item, code: 'INGEST_ERR_ENTRY_VALUE', message: `data point ${item} of ${m.name} has ${stat} ${String(v)}; a metric value must be a finite number`, raw: { metric: m.name, point } });
      continue;
    }
    push(m.out, base(m, point, `${m.name}.${stat}`, v, m.unit, stat === 'sum' ? counterKind : 'gauge'), item, m.opts);
  }
}

function numbers(v: unknown): number[] {
  return Array.isArray(v) ? v.map((x) => Number(x)) : [];
}

function histogramPoint(m: MetricContext, point: Obj, body: Obj | undefined, item: number): void {
  const t = temporality(body);
  distribution(m, point, item, t === 'cumulative' ? 'counter' : 'gauge', { temporality: t, bucket_counts: numbers(point.bucketCounts), explicit_bounds: numbers(point.explicitBounds) });
}

function exponentialPoint(m: MetricContext, point: Obj, body: Obj | undefined, item: number): void {
  const t = temporality(body);
  const buckets = (b: Obj | undefined) => ({ offset: typeof b?.offset === 'number' ? b.offset : 0, bucket_counts: numbers(b?.bucketCounts) });
  distribution(m, point, item, t === 'cumulative' ? 'counter' : 'gauge', {
    temporality: t,
    scale: typeof point.scale === 'number' ? point.scale : 0,
    zero_count: integer(point.zeroCount).value,
    positive: buckets(obj(point, 'positive')),
    negative: buckets(obj(point, 'negative')),
  });
}

function summaryPoint(m: MetricContext, point: Obj, item: number): void {
  const quantiles = list(point, 'quantileValues').map((q) => ({ quantile: typeof q.quantile === 'number' ? q.quantile : 0, value: typeof q.value === 'number' ? q.value : 0 }));
  // A summary's sum is not optional (unlike a histogram's): an absent one is proto3's zero.
  distribution(m, { ...point, sum: typeof point.sum === 'number' ? point.sum : 0 }, item, 'counter', { quantiles });
}
