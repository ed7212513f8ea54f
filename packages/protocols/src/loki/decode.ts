import type { WireEntry } from '@ingest/contracts';
import { LabelSet, setOwn } from '../labels.ts';
import { protoType } from '../proto.ts';
import { push } from '../push.ts';
import { unsnappy } from '../snappy.ts';
import { DEFAULT_LABEL_LIMITS, emptyDecoded, type Decoded, type DecodeOptions } from '../types.ts';
import { decodeWith, protoError } from '../decode-proto.ts';

export type LokiEncoding = 'protobuf' | 'json';

export function lokiEncoding(contentType: string | undefined): LokiEncoding | undefined {
  const ct = (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  if (ct === 'application/x-protobuf' || ct === 'application/protobuf') return 'protobuf';
  if (ct === 'application/json' || ct === '') return 'json';
  return undefined;
}

const pushRequest = () => protoType(['loki/push.proto'], 'logproto.PushRequest');

/** One stream as both encodings give it: its label set, and its entries. */
interface Stream {
  labels: Record<string, string> | string;
  entries: { tsNs: string; line: string; metadata: Array<[string, string]> }[];
}

/** Stream labels that name the app, in order of preference (Loki's own service_name first). */
const APP_LABELS = ['service_name', 'app', 'application', 'job', 'service'] as const;
const LEVEL_LABELS = ['level', 'detected_level', 'severity'] as const;
const LEVEL_WORDS: ReadonlySet<string> = new Set(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'warning', 'err', 'critical', 'crit', 'notice', 'informational', 'emerg', 'emergency', 'panic']);

/**
 * A Loki push body → log entries: the stream's labels → labels (the app from service_name, app,
 * job…; the level from level / detected_level), the line → message, structured metadata →
 * data.structured_metadata, the nanosecond time → timestamp (ms) and data.time_unix_nano. JSON
 * (`{"streams":[{"stream":{…},"values":[["<ns>","<line>",{…}]]}]}`) or snappy-compressed protobuf.
 * The item of an entry is its 0-based place among all the entries of the request.
 */
export function decodeLokiPush(body: Uint8Array, encoding: LokiEncoding, opts: DecodeOptions & { parseJson: (text: string) => unknown; maxBytes: number }): Decoded {
  const inflated = encoding === 'protobuf' ? unsnappy(body, opts.maxBytes) : undefined;
  const streams = inflated !== undefined ? protobufStreams(inflated) : jsonStreams(body, opts.parseJson);
  const out = emptyDecoded();
  if (inflated !== undefined) out.bytes = inflated.byteLength;
  let item = 0;
  for (const s of streams) {
    let labels: Record<string, string>;
    if (typeof s.labels === 'string') {
      const parsed = parseLabelSet(s.labels);
      if (typeof parsed === 'string') {
        s.entries.forEach((e, i) => out.refusals.push({ item: item + i, code: 'INGEST_ERR_ENTRY_UNDECODABLE', message: `the stream's labels ${(s.labels as string).slice(0, 80)} ${parsed}`, raw: { labels: s.labels, ts: e.tsNs, line: e.line } }));
        item += s.entries.length;
        continue;
      }
      labels = parsed;
    } else labels = s.labels;
    for (const e of s.entries) {
      const entry = lokiEntry(labels, e, opts);
      if (typeof entry === 'string') out.refusals.push({ item, code: 'INGEST_ERR_ENTRY_UNDECODABLE', message: entry, raw: { labels, ts: e.tsNs, line: e.line } });
      else push(out, entry, item, opts);
      item++;
    }
  }
  return out;
}

function lokiEntry(labels: Record<string, string>, e: Stream['entries'][number], opts: DecodeOptions): WireEntry | string {
  if (!/^\d{1,19}$/.test(e.tsNs)) return `timestamp "${e.tsNs.slice(0, 32)}" is not a whole number of nanoseconds since the epoch`;
  const data: Record<string, unknown> = { message: e.line };
  const set = new LabelSet(opts.labelLimits ?? DEFAULT_LABEL_LIMITS);
  let app: string | undefined;
  let level: string | undefined;
  for (const k of APP_LABELS) if (app === undefined && labels[k] !== undefined && labels[k] !== '') app = labels[k];
  for (const k of LEVEL_LABELS) if (level === undefined && labels[k] !== undefined) level = labels[k];
  for (const [k, v] of Object.entries(labels)) set.add(k, v);
  if (e.metadata.length > 0) {
    const md: Record<string, string> = {};
    for (const [k, v] of e.metadata) {
      setOwn(md, k, v);
      if (level === undefined && (LEVEL_LABELS as readonly string[]).includes(k)) level = v;
    }
    data.structured_metadata = md;
  }
  if (level !== undefined) {
    if (LEVEL_WORDS.has(level.toLowerCase())) data.level = level;
    else data.original_level = level;
  }
  data.time_unix_nano = e.tsNs;
  if (set.hasOverflow) data.attributes = set.overflow;
  const entry: WireEntry = { type: 'log', timestamp: Number(BigInt(e.tsNs) / 1_000_000n), data };
  if (app !== undefined) entry.app = app;
  if (!set.empty) entry.labels = set.labels;
  return entry;
}

function protobufStreams(bytes: Uint8Array): Stream[] {
  const req = decodeWith(pushRequest(), bytes);
  const streams = Array.isArray(req.streams) ? (req.streams as Record<string, unknown>[]) : [];
  return streams.map((s) => ({
    labels: typeof s.labels === 'string' ? s.labels : '{}',
    entries: (Array.isArray(s.entries) ? (s.entries as Record<string, unknown>[]) : []).map((e) => {
      const ts = (e.timestamp ?? {}) as { seconds?: string; nanos?: number };
      const ns = BigInt(ts.seconds ?? '0') * 1_000_000_000n + BigInt(ts.nanos ?? 0);
      const md = Array.isArray(e.structuredMetadata) ? (e.structuredMetadata as { name?: string; value?: string }[]) : [];
      return { tsNs: ns.toString(), line: typeof e.line === 'string' ? e.line : '', metadata: md.map((p) => [p.name ?? '', p.value ?? ''] as [string, string]) };
    }),
  }));
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function jsonStreams(body: Uint8Array, parseJson: (text: string) => unknown): Stream[] {
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    throw invalid('the body is not valid UTF-8');
  }
  const doc = parseJson(text) as { streams?: unknown };
  if (doc === null || typeof doc !== 'object' || !Array.isArray(doc.streams)) throw invalid('the body must be {"streams": [{"stream": {…}, "values": [["<ns>", "<line>"], …]}]}');
  return doc.streams.map((s: unknown, i: number) => {
    const o = (s ?? {}) as { stream?: unknown; values?: unknown };
    const labels: Record<string, string> = {};
    if (o.stream !== undefined && (o.stream === null || typeof o.stream !== 'object' || Array.isArray(o.stream))) throw invalid(`streams[${i}].stream must be an object of label names to values`);
    for (const [k, v] of Object.entries((o.stream ?? {}) as Record<string, unknown>)) setOwn(labels, k, typeof v === 'string' ? v : JSON.stringify(v));
    if (!Array.isArray(o.values)) throw invalid(`streams[${i}].values must be an array of ["<ns>", "<line>"] pairs`);
    return {
      labels,
      entries: o.values.map((v: unknown) => {
        const [ts, line, md] = Array.isArray(v) ? (v as unknown[]) : [];
        const metadata = md !== null && typeof md === 'object' && !Array.isArray(md) ? Object.entries(md as Record<string, unknown>).map(([k, x]) => [k, typeof x === 'string' ? x : JSON.stringify(x)] as [string, string]) : [];
        return { tsNs: typeof ts === 'string' ? ts : typeof ts === 'number' ? String(ts) : '', line: typeof line === 'string' ? line : JSON.stringify(line ?? ''), metadata };
      }),
    };
  });
}

function invalid(why: string) {
  return protoError('logproto.PushRequest (JSON)', why);
}

/**
 * A label set in Prometheus syntax, `{name="value", …}` (values with \" \\ \n escapes), as Loki's
 * protobuf streams carry it; a string saying what is wrong when it is not one.
 */
export function parseLabelSet(s: string): Record<string, string> | string {
  const out: Record<string, string> = {};
  let i = 0;
  const ws = () => {
    while (i < s.length && /\s/.test(s[i]!)) i++;
  };
  ws();
  if (s[i] !== '{') return 'must start with {';
  i++;
  ws();
  if (s[i] === '}') return out;
  for (;;) {
    ws();
    const m = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(s.slice(i, i + 256));
    if (!m) return `has an invalid label name at ${i}`;
    const name = m[0];
    i += name.length;
    ws();
    if (s[i] !== '=') return `needs = after ${name}`;
    i++;
    ws();
    if (s[i] !== '"') return `needs a quoted value for ${name}`;
    i++;
    let v = '';
    while (i < s.length && s[i] !== '"') {
      if (s[i] === '\\' && i + 1 < s.length) {
        const c = s[i + 1]!;
        v += c === 'n' ? '\n' : c === 't' ? '\t' : c;
        i += 2;
      } else v += s[i++];
    }
    if (s[i] !== '"') return `has an unclosed value for ${name}`;
    i++;
    setOwn(out, name, v);
    ws();
    if (s[i] === ',') {
      i++;
      ws();
      if (s[i] === '}') break;
      continue;
    }
    if (s[i] === '}') break;
    return `needs , or } after ${name}`;
  }
  i++;
  ws();
  return i === s.length ? out : 'has text after the closing }';
}
