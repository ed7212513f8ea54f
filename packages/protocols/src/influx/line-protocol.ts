/**
 * Influx line protocol, as Telegraf's outputs.influxdb / outputs.http (data_format = "influx")
 * send it:
 *
 *   measurement[,tag=value...] field=value[,field=value...] [timestamp]
 *
 * Escapes: `\,` and `\ ` in measurements; `\,` `\=` `\ ` in tag keys, tag values and field keys;
 * `\"` and `\\` inside double-quoted string field values. A backslash before anything else is a
 * literal backslash. Lines starting with `#` are comments.
 */
import { createHash } from 'node:crypto';
import type { WireEntry } from '@ingest/contracts';
import { LabelSet, metricName } from '../labels.ts';
import { DEFAULT_LABEL_LIMITS, type LabelLimits, type Refusal } from '../types.ts';

export type Precision = 'ns' | 'us' | 'ms' | 's' | 'm' | 'h';

/** Integers (`i`, `u`) are bigint so every digit survives; floats are numbers. */
export type FieldValue = number | bigint | boolean | string;

export interface LinePoint {
  measurement: string;
  tags: Record<string, string>;
  fields: Record<string, FieldValue>;
  /** Epoch ms, or undefined when the line carried no timestamp. */
  timestampMs: number | undefined;
  /** The timestamp in epoch ns (decimal), kept exact for the point's identity. */
  timestampNs: string | undefined;
  /** 1-based line number in the body. */
  line: number;
}

export interface LineProtocolError {
  line: number;
  message: string;
}

const NS_PER: Record<Precision, bigint> = { ns: 1n, us: 1_000n, ms: 1_000_000n, s: 1_000_000_000n, m: 60_000_000_000n, h: 3_600_000_000_000n };

/** Maps a `precision` query value (v1: n, u, ms, s, m, h; v2: ns, us, ms, s) to a Precision. */
export function parsePrecision(v: string | undefined): Precision | undefined {
  switch (v ?? 'ns') {
    case 'n':
    case 'ns':
      return 'ns';
    case 'u':
    case 'us':
    case 'µ':
    case 'µs':
      return 'us';
    case 'ms':
      return 'ms';
    case 's':
      return 's';
    case 'm':
      return 'm';
    case 'h':
      return 'h';
    default:
      return undefined;
  }
}

/** Parses a body. Bad lines are reported and skipped; good lines around them are kept. */
export function parseLineProtocol(text: string, precision: Precision, opts: { maxLines?: number } = {}): { points: LinePoint[]; errors: LineProtocolError[] } {
  const points: LinePoint[] = [];
  const errors: LineProtocolError[] = [];
  const maxLines = opts.maxLines ?? 100_000;
  let lineNo = 0;
  let start = 0;
  while (start <= text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    lineNo++;
    if (lineNo > maxLines) {
      errors.push({ line: lineNo, message: `more than ${maxLines} lines in one request` });
      break;
    }
    const raw = text.slice(start, end).replace(/\r$/, '');
    start = end + 1;
    const line = raw.trimStart();
    if (line === '' || line.startsWith('#')) continue;
    try {
      points.push(parseLine(line, precision, lineNo));
    } catch (e) {
      errors.push({ line: lineNo, message: (e as Error).message });
    }
  }
  return { points, errors };
}

class Cursor {
  i = 0;
  constructor(readonly s: string) {}
  get done(): boolean {
    return this.i >= this.s.length;
  }
  peek(): string {
    return this.s[this.i] ?? '';
  }
}

/** Reads until an unescaped char in `stops`; `escapable` are the chars a backslash may escape. */
function readToken(c: Cursor, stops: string, escapable: string): string {
  let out = '';
  while (!c.done) {
    const ch = c.s[c.i]!;
    if (ch === '\\' && c.i + 1 < c.s.length && escapable.includes(c.s[c.i + 1]!)) {
      out += c.s[c.i + 1];
      c.i += 2;
      continue;
    }
    if (stops.includes(ch)) break;
    out += ch;
    c.i++;
  }
  return out;
}

function parseLine(line: string, precision: Precision, lineNo: number): LinePoint {
  const c = new Cursor(line);
  const measurement = readToken(c, ', ', ', \\');
  if (measurement === '') throw new Error('missing measurement');
  const tags: Record<string, string> = {};
  while (c.peek() === ',') {
    c.i++;
    const key = readToken(c, '=, ', ',= \\');
    if (c.peek() !== '=') throw new Error(`tag "${clip(key)}" has no value`);
    c.i++;
    const value = readToken(c, ', ', ',= \\');
    if (key === '' || value === '') throw new Error('empty tag key or value');
    if (key === '__proto__') throw new Error('the tag key "__proto__" is not accepted');
    tags[key] = value;
  }
  if (c.peek() !== ' ') throw new Error('missing fields');
  while (c.peek() === ' ') c.i++;
  const fields: Record<string, FieldValue> = {};
  for (;;) {
    const key = readToken(c, '=, ', ',= \\');
    if (c.peek() !== '=' || key === '') throw new Error(`field "${clip(key)}" has no value`);
    c.i++;
    // Assigned, it would set the object's prototype and the field would vanish without a word.
    if (key === '__proto__') throw new Error('the field key "__proto__" is not accepted');
    fields[key] = readFieldValue(c, key);
    if (c.peek() === ',') {
      c.i++;
      continue;
    }
    break;
  }
  let timestampMs: number | undefined;
  let timestampNs: string | undefined;
  if (c.peek() === ' ') {
    while (c.peek() === ' ') c.i++;
    const ts = c.s.slice(c.i).trimEnd();
    if (ts !== '') {
      if (!/^-?\d{1,19}$/.test(ts)) throw new Error(`timestamp "${clip(ts)}" is not an integer`);
      // BigInt: nanosecond timestamps (1.7e18) are beyond Number's exact range.
      const ns = BigInt(ts) * NS_PER[precision];
      timestampNs = ns.toString();
      timestampMs = Number(ns / 1_000_000n);
    }
    c.i = c.s.length;
  }
  if (!c.done) throw new Error(`unexpected "${clip(c.s.slice(c.i))}" after the fields`);
  return { measurement, tags, fields, timestampMs, timestampNs, line: lineNo };
}

function readFieldValue(c: Cursor, key: string): FieldValue {
  if (c.peek() === '"') {
    c.i++;
    let out = '';
    while (!c.done) {
      const ch = c.s[c.i]!;
      if (ch === '\\' && (c.s[c.i + 1] === '"' || c.s[c.i + 1] === '\\')) {
        out += c.s[c.i + 1];
        c.i += 2;
        continue;
      }
      if (ch === '"') {
        c.i++;
        return out;
      }
      out += ch;
      c.i++;
    }
    throw new Error(`string field "${clip(key)}" is not closed`);
  }
  const raw = readToken(c, ', ', '');
  if (/^-?\d+i$/.test(raw) || /^\d+u$/.test(raw)) {
    const n = BigInt(raw.slice(0, -1));
    // Influx's own ranges: int64 for `i`, uint64 for `u`.
    const ok = raw.endsWith('u') ? n <= 18_446_744_073_709_551_615n : n >= -9_223_372_036_854_775_808n && n <= 9_223_372_036_854_775_807n;
    if (!ok) throw new Error(`field "${clip(key)}" is out of range for ${raw.endsWith('u') ? 'an unsigned' : 'a signed'} 64-bit integer`);
    return n;
  }
  if (/^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$/.test(raw)) {
    const n = Number(raw);
    if (!Number.isFinite(n)) throw new Error(`field "${clip(key)}" is out of range`);
    return n;
  }
  if (/^(t|T|true|True|TRUE)$/.test(raw)) return true;
  if (/^(f|F|false|False|FALSE)$/.test(raw)) return false;
  throw new Error(`field "${clip(key)}" has an invalid value "${clip(raw)}"`);
}

function clip(s: string): string {
  return s.length > 64 ? `${s.slice(0, 64)}…` : s;
}

/** The metric of a field: `measurement.field`, or just `measurement` for a field called `value`. */
export function fieldMetricName(measurement: string, field: string): string {
  return metricName(field === 'value' ? measurement : `${measurement}.${field}`);
}

export interface LineEntries {
  entries: WireEntry[];
  /** origins[i] is the 1-based line entries[i] came from. */
  origins: number[];
  /** Lines of which no field could be stored (only string fields). */
  refusals: Refusal[];
  /** String fields left out of lines that had a numeric field too. */
  skippedFields: number;
}

/**
 * One metric entry per numeric or boolean field (true = 1): name `measurement.field`, or just
 * `measurement` for a field called `value`; tags become labels (within the limits; the rest in
 * data.attributes). An integer keeps every digit: the value column is a double, so one beyond 2^53
 * also carries its exact decimal digits in `data.value_exact`. String fields carry no value: they
 * are skipped beside numeric fields (counted), and a line with only string fields is refused.
 * A point with a timestamp gets a deterministic id from (app, name, labels, time), so a batch
 * Telegraf resends after a timeout is deduplicated — the same identity Influx gives a point.
 */
export function linesToEntries(points: readonly LinePoint[], opts: { app: string; source?: string; now?: number; labelLimits?: LabelLimits }): LineEntries {
  const now = opts.now ?? Date.now();
  const out: LineEntries = { entries: [], origins: [], refusals: [], skippedFields: 0 };
  for (const p of points) {
    const set = new LabelSet(opts.labelLimits ?? DEFAULT_LABEL_LIMITS);
    for (const [k, v] of Object.entries(p.tags)) set.add(k, v);
    const labels = set.labels;
    const labelKeyStr = JSON.stringify(
      Object.keys(labels)
        .sort()
        .map((k) => [k, labels[k]]),
    );
    let numeric = 0;
    let strings = 0;
    for (const [field, v] of Object.entries(p.fields)) {
      if (typeof v === 'string') {
        strings++;
        continue;
      }
      numeric++;
      const name = fieldMetricName(p.measurement, field);
      const data: Record<string, unknown> = { name, value: typeof v === 'boolean' ? (v ? 1 : 0) : Number(v) };
      if (typeof v === 'bigint' && !Number.isSafeInteger(Number(v))) data.value_exact = v.toString();
      if (set.hasOverflow) data.attributes = set.overflow;
      const e: WireEntry = { type: 'metric', timestamp: p.timestampMs ?? now, app: opts.app, data };
      if (!set.empty) e.labels = labels;
      if (opts.source) e.source = opts.source;
      if (p.timestampNs !== undefined) {
        e.id = `lp-${createHash('sha256').update(`${opts.app}\n${name}\n${labelKeyStr}\n${p.timestampNs}`).digest('hex').slice(0, 32)}`;
      }
      out.entries.push(e);
      out.origins.push(p.line);
    }
    if (numeric === 0) {
      out.refusals.push({ item: p.line, code: 'INGEST_ERR_ENTRY_VALUE', message: `${p.measurement} has only string fields; a metric needs a numeric or boolean field`, raw: { measurement: p.measurement, tags: p.tags, fields: p.fields } });
    } else out.skippedFields += strings;
  }
  return out;
}
