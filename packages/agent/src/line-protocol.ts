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
import type { EntryInput } from '@ingest/client';

export type Precision = 'ns' | 'us' | 'ms' | 's' | 'm' | 'h';

export type FieldValue = number | boolean | string;

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
    tags[key] = value;
  }
  if (c.peek() !== ' ') throw new Error('missing fields');
  while (c.peek() === ' ') c.i++;
  const fields: Record<string, FieldValue> = {};
  for (;;) {
    const key = readToken(c, '=, ', ',= \\');
    if (c.peek() !== '=' || key === '') throw new Error(`field "${clip(key)}" has no value`);
    c.i++;
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
  if (/^-?\d+i$/.test(raw) || /^\d+u$/.test(raw)) return Number(raw.slice(0, -1));
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

/** A metric name the normalizer accepts (^[a-zA-Z_:][a-zA-Z0-9_:.]*$); other characters become _. */
export function metricName(measurement: string, field: string): string {
  const raw = field === 'value' ? measurement : `${measurement}.${field}`;
  const s = raw.replace(/[^a-zA-Z0-9_:.]/g, '_');
  return /^[a-zA-Z_:]/.test(s) ? s : `_${s}`;
}

/** A label key the normalizer accepts (^[a-zA-Z_][a-zA-Z0-9_.-]*$). */
export function labelKey(tag: string): string {
  const s = tag.replace(/[^a-zA-Z0-9_.-]/g, '_');
  return /^[a-zA-Z_]/.test(s) ? s : `_${s}`;
}

/**
 * One metric entry per numeric or boolean field (true = 1): name `measurement.field`, or just
 * `measurement` for a field called `value`; tags become labels. String fields carry no value and
 * are skipped (counted). A point with a timestamp gets a deterministic id from (app, name, labels,
 * time), so a batch Telegraf resends after a timeout is deduplicated — the same identity Influx
 * itself gives a point.
 */
export function linesToEntries(points: readonly LinePoint[], opts: { app: string; source?: string; now?: number }): { entries: EntryInput[]; skippedFields: number } {
  const now = opts.now ?? Date.now();
  const entries: EntryInput[] = [];
  let skippedFields = 0;
  for (const p of points) {
    const labels: Record<string, string> = {};
    for (const [k, v] of Object.entries(p.tags)) labels[labelKey(k)] = v;
    const labelKeyStr = JSON.stringify(
      Object.keys(labels)
        .sort()
        .map((k) => [k, labels[k]]),
    );
    for (const [field, v] of Object.entries(p.fields)) {
      if (typeof v === 'string') {
        skippedFields++;
        continue;
      }
      const name = metricName(p.measurement, field);
      const value = typeof v === 'boolean' ? (v ? 1 : 0) : v;
      const e: EntryInput = {
        type: 'metric',
        timestamp: p.timestampMs ?? now,
        app: opts.app,
        data: { name, value },
        ...(Object.keys(labels).length > 0 ? { labels } : {}),
        ...(opts.source ? { source: opts.source } : {}),
      };
      if (p.timestampNs !== undefined) {
        e.id = `lp-${createHash('sha256').update(`${opts.app}\n${name}\n${labelKeyStr}\n${p.timestampNs}`).digest('hex').slice(0, 32)}`;
      }
      entries.push(e);
    }
  }
  return { entries, skippedFields };
}
