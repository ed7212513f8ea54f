import { ingestError } from '@ingest/contracts';
import { emptyDecoded, type Decoded, type DecodeOptions } from '../types.ts';
import { linesToEntries, parseLineProtocol, parsePrecision } from './line-protocol.ts';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The `app` of Influx points: the bucket (2.x) or database (1.x) they were written to, else this. */
export const INFLUX_DEFAULT_APP = 'influx';

/**
 * A line-protocol body → metric entries, one per numeric field. A line that does not parse, or
 * has only string fields, is refused by its 1-based line number; the other lines are kept.
 * `precision` is the query parameter of either API version (ns/us/ms/s, n/u, m, h).
 */
export function decodeLineProtocol(body: Uint8Array, query: { precision?: string | undefined; app?: string | undefined }, opts: DecodeOptions): Decoded {
  const precision = parsePrecision(query.precision);
  if (precision === undefined) throw ingestError('INGEST_ERR_INVALID_PARAMETER', ['precision', `"${String(query.precision).slice(0, 16)}" is not one of ns, us, ms, s, m, h`]);
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    throw ingestError('INGEST_ERR_INVALID_UTF8');
  }
  const { points, errors } = parseLineProtocol(text, precision, { maxLines: opts.maxEntries });
  if (errors.some((e) => e.line > opts.maxEntries)) throw ingestError('INGEST_ERR_TOO_MANY_ENTRIES', [opts.maxEntries]);
  const app = query.app !== undefined && query.app !== '' ? query.app : INFLUX_DEFAULT_APP;
  const lines = linesToEntries(points, { app, source: 'influx', now: opts.now, ...(opts.labelLimits ? { labelLimits: opts.labelLimits } : {}) });
  if (lines.entries.length > opts.maxEntries) throw ingestError('INGEST_ERR_TOO_MANY_ENTRIES', [opts.maxEntries]);
  const out = emptyDecoded();
  out.entries = lines.entries;
  out.origins = lines.origins;
  // The text of a refused line, for its dead letter (only looked up when there are refusals).
  const textLines = errors.length > 0 ? text.split('\n') : [];
  out.refusals = [...errors.map((e) => ({ item: e.line, code: 'INGEST_ERR_ENTRY_UNDECODABLE' as const, message: e.message, raw: textLines[e.line - 1] ?? '' })), ...lines.refusals].sort((a, b) => a.item - b.item);
  return out;
}
