import { TABLES, isShadowTable, type ShadowTableName } from '@ingest/storage';

/**
 * One end of a replay window as the operator wrote it. Offsets are log positions (the same range is
 * applied to every selected partition, since offsets are per partition); times are log append
 * times (the message timestamp Kafka and the embedded log keep), not event times.
 */
export type Bound =
  | { kind: 'offset'; offset: number; text: string }
  | { kind: 'time'; ms: number; text: string }
  | { kind: 'earliest'; text: string }
  | { kind: 'latest'; text: string };

export type Flag = '--from' | '--to';

/** A request an operator can fix: answered with 400 and shown as a usage error (exit code 2). */
export class ReplayRequestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReplayRequestError';
  }
}

// Date, 'T', hh:mm[:ss[.fraction]] and a mandatory zone: a zone-less time is ambiguous, and an
// ambiguous replay window is exactly what on-call must not get. A bare date means UTC midnight.
const ISO_RE = /^(\d{4})-(\d{2})-(\d{2})(?:[Tt](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?([Zz]|[+-]\d{2}:?\d{2}))?$/;

function daysInMonth(y: number, m: number): number {
  return new Date(Date.UTC(y, m, 0)).getUTCDate();
}

/** Parses an ISO 8601 time with a zone (or a bare UTC date) to epoch ms; undefined if it is not one. */
export function parseIsoTime(s: string): number | undefined {
  const m = ISO_RE.exec(s);
  if (!m) return undefined;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (mo < 1 || mo > 12 || d < 1 || d > daysInMonth(y, mo)) return undefined;
  if (m[4] !== undefined && (Number(m[4]) > 23 || Number(m[5]) > 59 || Number(m[6] ?? 0) > 59)) return undefined;
  // Date.parse accepts this grammar once the fraction is cut to milliseconds (truncated, so a time
  // never moves into the next millisecond) and the offset has its colon.
  let norm = s.replace(/\.(\d{1,9})/, (_x, f: string) => `.${f.slice(0, 3).padEnd(3, '0')}`);
  norm = norm.replace(/([+-]\d{2})(\d{2})$/, '$1:$2');
  const ms = Date.parse(norm.length === 10 ? `${norm}T00:00:00Z` : norm);
  return Number.isFinite(ms) ? ms : undefined;
}

export function parseBound(raw: unknown, flag: Flag): Bound {
  if (typeof raw !== 'string' || raw.trim() === '') throw new ReplayRequestError(`${flag} is required (an offset, an ISO-8601 time with a zone, earliest or latest)`);
  const text = raw.trim();
  if (/^\d+$/.test(text)) {
    const offset = Number(text);
    if (!Number.isSafeInteger(offset)) throw new ReplayRequestError(`${flag}=${text} is not a usable offset`);
    return { kind: 'offset', offset, text };
  }
  const lower = text.toLowerCase();
  if (lower === 'earliest') return { kind: 'earliest', text: lower };
  if (lower === 'latest') return { kind: 'latest', text: lower };
  const ms = parseIsoTime(text);
  if (ms !== undefined) return { kind: 'time', ms, text };
  throw new ReplayRequestError(
    `${flag}=${text} is not an offset (e.g. 1200), an ISO-8601 time with a zone (e.g. 2026-11-20T10:00:00Z), a UTC date (2026-11-20), earliest or latest`,
  );
}

export interface ReplayRequest {
  from: Bound;
  to: Bound;
  /** Undefined: every partition of the topic. */
  partitions: number[] | undefined;
  tenant: string | undefined;
  target: ShadowTableName;
  /** Keep only entries whose event time (ts) is in [fromMs, toMs); the log range is still scanned whole. */
  eventWindow: EventWindow | undefined;
}

export interface EventWindow {
  fromMs: number;
  toMs: number;
  from: string;
  to: string;
}

/** --event-from/--event-to: both or neither, ISO times with a zone, from before to. */
export function parseEventWindow(rawFrom: unknown, rawTo: unknown): EventWindow | undefined {
  if ((rawFrom === undefined || rawFrom === null) && (rawTo === undefined || rawTo === null)) return undefined;
  if (typeof rawFrom !== 'string' || typeof rawTo !== 'string') throw new ReplayRequestError('--event-from and --event-to go together: give both (ISO-8601 times with a zone)');
  const fromMs = parseIsoTime(rawFrom.trim());
  const toMs = parseIsoTime(rawTo.trim());
  if (fromMs === undefined) throw new ReplayRequestError(`--event-from=${rawFrom} is not an ISO-8601 time with a zone (e.g. 2026-11-20T10:00:00Z) or a UTC date`);
  if (toMs === undefined) throw new ReplayRequestError(`--event-to=${rawTo} is not an ISO-8601 time with a zone (e.g. 2026-11-20T11:00:00Z) or a UTC date`);
  if (fromMs >= toMs) throw new ReplayRequestError(`--event-from=${rawFrom} is not before --event-to=${rawTo}: the event window is [from, to)`);
  return { fromMs, toMs, from: new Date(fromMs).toISOString(), to: new Date(toMs).toISOString() };
}

const MAX_TENANT_LENGTH = 256;

/** Validates a replay request body; everything wrong is a ReplayRequestError naming the flag. */
export function parseReplayRequest(body: unknown): ReplayRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ReplayRequestError('the request must be a JSON object');
  const b = body as Record<string, unknown>;
  const from = parseBound(b['from'], '--from');
  const to = parseBound(b['to'], '--to');
  if (from.kind === 'offset' && to.kind === 'offset' && from.offset > to.offset) {
    throw new ReplayRequestError(`--from=${from.offset} is after --to=${to.offset}: offsets are inclusive at both ends, so --from must be <= --to`);
  }
  if (from.kind === 'time' && to.kind === 'time' && from.ms >= to.ms) {
    throw new ReplayRequestError(`--from=${from.text} is not before --to=${to.text}: a time window is [from, to), so --from must be earlier`);
  }

  let partitions: number[] | undefined;
  if (b['partitions'] !== undefined && b['partitions'] !== null) {
    const ps = b['partitions'];
    if (!Array.isArray(ps) || ps.length === 0) throw new ReplayRequestError('--partition must name at least one partition');
    partitions = [];
    for (const p of ps) {
      const n = typeof p === 'string' && /^\d+$/.test(p) ? Number(p) : p;
      if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw new ReplayRequestError(`--partition=${String(p)} is not a partition number`);
      if (!partitions.includes(n)) partitions.push(n);
    }
    partitions.sort((x, y) => x - y);
  }

  let tenant: string | undefined;
  if (b['tenant'] !== undefined && b['tenant'] !== null) {
    const t = b['tenant'];
    if (typeof t !== 'string' || t === '' || t.length > MAX_TENANT_LENGTH) throw new ReplayRequestError(`--tenant must be a tenant id of 1 to ${MAX_TENANT_LENGTH} characters`);
    tenant = t;
  }

  const target = b['target'] ?? TABLES.shadow;
  if (typeof target !== 'string' || !isShadowTable(target)) {
    throw new ReplayRequestError(`refusing target "${String(target)}": replay writes only to a shadow table (${TABLES.shadow}), never to the live table ${TABLES.live}`);
  }
  const eventWindow = parseEventWindow(b['eventFrom'], b['eventTo']);
  return { from, to, partitions, tenant, target, eventWindow };
}

/** Who asked, as the CLI reports it ($USER); bounded and printable, since it lands in the audit log. */
export function parseWho(raw: unknown): string {
  return typeof raw === 'string' && raw.length > 0 ? raw.replace(/[^\x20-\x7e]/g, '?').slice(0, 128) : 'unknown';
}

/** The CLI's argv, for the audit log; bounded so a request can't grow the log without limit. */
export function parseArgs(raw: unknown): string[] {
  if (!Array.isArray(raw)) return [];
  return raw.slice(0, 64).map((a) => String(a).slice(0, 512));
}
