import type { WireEntry } from '@ingest/contracts';
import { LabelSet, setOwn } from '../labels.ts';
import { push } from '../push.ts';
import { DEFAULT_LABEL_LIMITS, emptyDecoded, type Decoded, type DecodeOptions } from '../types.ts';

const MESSAGE_KEYS = ['message', 'msg', 'log'] as const;
const TIME_KEYS = ['timestamp', '@timestamp', 'time', 'date'] as const;
const LEVEL_KEYS = ['level', 'severity'] as const;
const APP_KEYS = ['app', 'service'] as const;

/** Level words the normalizer takes (its vocabulary and aliases); anything else is stored as info, the word kept in data. */
const LEVEL_WORDS: ReadonlySet<string> = new Set(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'warning', 'err', 'critical', 'crit', 'notice', 'informational', 'emerg', 'emergency', 'panic']);
const PINO_LEVELS: ReadonlySet<number> = new Set([10, 20, 30, 40, 50, 60]);

/**
 * A number of seconds, milliseconds, microseconds or nanoseconds since the epoch, told apart by
 * size (Fluent Bit's `date` is float seconds, JavaScript's ms, Go's and Vector's often ns), as ms.
 */
export function epochToMs(n: number): number {
  const a = Math.abs(n);
  // Through whole microseconds first: 1764583200.123 * 1000 is 1764583200122.9998 in doubles.
  if (a < 1e11) return Math.floor(Math.round(n * 1e6) / 1e3);
  if (a < 1e14) return Math.floor(n);
  if (a < 1e17) return Math.floor(n / 1e3);
  return Math.floor(n / 1e6);
}

function first(o: Record<string, unknown>, keys: readonly string[]): [string, unknown] | undefined {
  for (const k of keys) if (Object.hasOwn(o, k) && o[k] !== undefined && o[k] !== null) return [k, o[k]];
  return undefined;
}

/**
 * Arbitrary JSON log objects (what Vector's and Fluent Bit's `http` outputs send) → log entries:
 * message from message/msg/log, time from timestamp/@timestamp/time/date (numbers of any epoch
 * unit, or ISO 8601 strings), level from level/severity, app from app/service; other scalar
 * fields → labels within the limits, nested values and what does not fit → data. The item of an
 * object is its 0-based place in the body.
 */
export function plainLogsToEntries(values: readonly unknown[], opts: DecodeOptions): Decoded {
  const out = emptyDecoded();
  values.forEach((v, item) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) {
      out.refusals.push({ item, code: 'INGEST_ERR_ENTRY_UNDECODABLE', message: `item ${item} is not a JSON object; send one object per log line`, raw: v });
      return;
    }
    const o = v as Record<string, unknown>;
    const msg = first(o, MESSAGE_KEYS);
    if (msg === undefined) {
      out.refusals.push({ item, code: 'INGEST_ERR_ENTRY_UNDECODABLE', message: `item ${item} has no ${MESSAGE_KEYS.join(', ')} field to take the message from`, raw: v });
      return;
    }
    const time = first(o, TIME_KEYS);
    const level = first(o, LEVEL_KEYS);
    const app = first(o, APP_KEYS);
    const used = new Set([msg[0], time?.[0], level?.[0], app?.[0] !== undefined && typeof app[1] === 'string' ? app[0] : undefined]);

    const data: Record<string, unknown> = { message: typeof msg[1] === 'string' ? msg[1] : JSON.stringify(msg[1]) };
    if (level !== undefined) {
      const lv = level[1];
      if ((typeof lv === 'string' && LEVEL_WORDS.has(lv.toLowerCase())) || (typeof lv === 'number' && PINO_LEVELS.has(lv))) data.level = lv;
      else data.original_level = lv;
    }
    let timestamp: string | number = opts.now;
    if (time !== undefined) {
      const t = time[1];
      if (typeof t === 'number') timestamp = epochToMs(t);
      else if (typeof t === 'string' && /^-?\d+(\.\d+)?$/.test(t.trim())) timestamp = epochToMs(Number(t));
      // Anything else goes to the normalizer as given, which refuses what is not ISO 8601 with a zone.
      else timestamp = typeof t === 'string' ? t : JSON.stringify(t);
    }
    const labels = new LabelSet(opts.labelLimits ?? DEFAULT_LABEL_LIMITS);
    for (const [k, x] of Object.entries(o)) {
      if (used.has(k)) continue;
      if (typeof x === 'string') labels.add(k, x);
      else if (typeof x === 'number' || typeof x === 'boolean') labels.add(k, String(x));
      else if (x !== null && x !== undefined) setOwn(data, k === 'message' || k === 'level' ? `field_${k}` : k, x);
    }
    const entry: WireEntry = { type: 'log', timestamp, data };
    if (app !== undefined && typeof app[1] === 'string') entry.app = app[1];
    if (!labels.empty) entry.labels = labels.labels;
    if (labels.hasOverflow) data.attributes = labels.overflow;
    push(out, entry, item, opts);
  });
  return out;
}
