import { reject, type EntryLimits, type RejectedOutcome } from './limits.ts';
import { describe, preview } from './values.ts';

// Extended ISO 8601 / RFC 3339: date, 'T' (or a space, as RFC 3339 allows), hh:mm[:ss[.frac]] and a
// zone. Every group is fixed-width or a single bounded run of digits, so matching is linear. The zone
// is optional here only so a missing zone gets its own, more useful, message.
const ISO_RE = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?([Zz]|[+-]\d{2}(?::?\d{2})?)?$/;

// Longest valid form: "2024-01-01T00:00:00.123456789+00:00" is 35 characters.
const MAX_ISO_LENGTH = 40;

const MINUTE_MS = 60_000;

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/** Parses an ISO 8601 string with a zone to UTC epoch ms, or returns why not (without the field name). */
export function parseIsoTimestamp(s: string): number | string {
  const m = s.length <= MAX_ISO_LENGTH ? ISO_RE.exec(s) : null;
  if (m === null) return `${preview(s)} is not an ISO 8601 date-time like "2024-05-01T12:00:00.000Z"`;
  const [, ys, mos, ds, hs, mis, ss, frac, zone] = m;
  if (zone === undefined) {
    return `${preview(s)} has no UTC offset; append "Z" or an offset like "+02:00" (a zone-less time is ambiguous)`;
  }
  const year = Number(ys);
  const month = Number(mos);
  const day = Number(ds);
  const hour = Number(hs);
  const minute = Number(mis);
  // A leap second (:60) is real in RFC 3339; keep it in its own minute instead of rolling over.
  const rawSecond = ss === undefined ? 0 : Number(ss);
  const leap = rawSecond === 60;
  const second = leap ? 59 : rawSecond;
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month) || hour > 23 || minute > 59 || rawSecond > 60) {
    return `${preview(s)} is not a valid calendar date-time`;
  }
  // Sub-millisecond digits are truncated, not rounded, so a time never moves into the next ms.
  const ms = leap ? 999 : frac === undefined ? 0 : Number(frac.slice(0, 3).padEnd(3, '0'));
  let offsetMinutes = 0;
  if (zone !== 'Z' && zone !== 'z') {
    const sign = zone[0] === '-' ? -1 : 1;
    const oh = Number(zone.slice(1, 3));
    const om = zone.length > 3 ? Number(zone.slice(-2)) : 0;
    if (oh > 23 || om > 59) return `${preview(s)} has an invalid UTC offset`;
    offsetMinutes = sign * (oh * 60 + om);
  }
  // Date.UTC maps years 0–99 to 1900–1999; such times are far outside the window either way.
  return Date.UTC(year, month - 1, day, hour, minute, second, ms) - offsetMinutes * MINUTE_MS;
}

/** Hint for a number that is plausibly epoch seconds, microseconds or nanoseconds instead of ms. */
function epochHint(n: number, receivedAt: number): string {
  if (Math.abs(n * 1000 - receivedAt) < 366 * 24 * 3600 * 1000) return '; it looks like epoch seconds, send milliseconds';
  if (Math.abs(n / 1000 - receivedAt) < 366 * 24 * 3600 * 1000) return '; it looks like epoch microseconds, send milliseconds';
  if (Math.abs(n / 1e6 - receivedAt) < 366 * 24 * 3600 * 1000) return '; it looks like epoch nanoseconds, send milliseconds';
  return '';
}

function iso(ms: number): string {
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? String(ms) : d.toISOString();
}

/**
 * The event time as integer UTC epoch ms inside [receivedAt - maxPastMs, receivedAt + maxFutureMs],
 * or a rejection naming the field.
 */
export function normalizeTimestamp(value: unknown, receivedAt: number, limits: EntryLimits): number | RejectedOutcome {
  let ts: number;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return reject('INGEST_ERR_ENTRY_TIMESTAMP', `timestamp must be a finite number of epoch milliseconds, got ${String(value)}`);
    ts = Math.floor(value);
  } else if (typeof value === 'string') {
    const parsed = parseIsoTimestamp(value);
    if (typeof parsed === 'string') {
      const hint = /^\d{1,20}$/.test(value) ? '; send epoch milliseconds as a JSON number, not a string' : '';
      return reject('INGEST_ERR_ENTRY_TIMESTAMP', `timestamp ${parsed}${hint}`);
    }
    ts = parsed;
  } else if (value === undefined || value === null) {
    return reject('INGEST_ERR_ENTRY_FIELD_MISSING', 'timestamp is required: an ISO 8601 string with a zone or epoch milliseconds');
  } else {
    return reject('INGEST_ERR_ENTRY_TIMESTAMP', `timestamp must be an ISO 8601 string or epoch milliseconds, got ${describe(value)}`);
  }
  const oldest = receivedAt - limits.maxPastMs;
  const newest = receivedAt + limits.maxFutureMs;
  // Only a refusal shows the value: nothing is formatted for the entries that pass.
  const shown = (): string => (typeof value === 'string' ? preview(value) : String(value));
  if (ts < oldest) {
    const hint = typeof value === 'number' ? epochHint(value, receivedAt) : '';
    return reject('INGEST_ERR_ENTRY_TIMESTAMP', `timestamp ${shown()} (${iso(ts)}) is older than the accepted window starting ${iso(oldest)}${hint}`);
  }
  if (ts > newest) {
    const hint = typeof value === 'number' ? epochHint(value, receivedAt) : '';
    return reject('INGEST_ERR_ENTRY_TIMESTAMP', `timestamp ${shown()} (${iso(ts)}) is more than ${Math.round(limits.maxFutureMs / 1000)} s ahead of the receive time ${iso(receivedAt)}${hint}`);
  }
  return ts;
}
