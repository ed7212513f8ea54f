import { ENTRY_TYPES, type StoredEntry } from '@ingest/contracts';
import { parseWhen, UsageError, type Io } from '../cli.ts';

/** The filter flags `query` and `tail` share, as parseArgs options (one per GET /v2/query parameter). */
export const FILTER_OPTIONS = {
  tenant: { type: 'string' },
  type: { type: 'string' },
  app: { type: 'string' },
  from: { type: 'string' },
  to: { type: 'string' },
  label: { type: 'string', multiple: true },
  level: { type: 'string' },
  q: { type: 'string' },
  name: { type: 'string' },
  id: { type: 'string' },
} as const;

export const FILTER_HELP = `Filters (the GET /v2/query parameters): --tenant <id> (required), --type log|metric|event|health|alert,
--app A, --from T, --to T (RFC 3339 with a zone, a UTC date, now, or relative: --from=-15m),
--label k=v (repeatable; all must match), --level L and --q TEXT (logs: level, message substring),
--name N (metrics), --id ID.`;

export interface FilterValues {
  tenant?: string | undefined;
  type?: string | undefined;
  app?: string | undefined;
  from?: string | undefined;
  to?: string | undefined;
  label?: string[] | undefined;
  level?: string | undefined;
  q?: string | undefined;
  name?: string | undefined;
  id?: string | undefined;
}

/** Checks the filter flags here, with the valid choices in the message, and turns them into the route's parameters. */
export function filterParams(v: FilterValues, now: number): URLSearchParams {
  if (!v.tenant) throw new UsageError('--tenant <id> is required: entries are read one tenant at a time');
  const qs = new URLSearchParams({ tenant: v.tenant });
  if (v.type !== undefined) {
    if (!(ENTRY_TYPES as readonly string[]).includes(v.type)) throw new UsageError(`--type ${v.type}: use one of ${ENTRY_TYPES.join(', ')}`);
    qs.set('type', v.type);
  }
  if (v.from !== undefined) qs.set('from', String(parseWhen(v.from, now, '--from')));
  if (v.to !== undefined) qs.set('to', String(parseWhen(v.to, now, '--to')));
  if (v.from !== undefined && v.to !== undefined && Number(qs.get('from')) >= Number(qs.get('to'))) throw new UsageError('--from must be before --to (the window is [from, to))');
  for (const l of v.label ?? []) {
    const eq = l.indexOf('=');
    if (eq <= 0) throw new UsageError(`--label ${l}: write --label key=value`);
    qs.append(`label.${l.slice(0, eq)}`, l.slice(eq + 1));
  }
  for (const k of ['app', 'level', 'q', 'name', 'id'] as const) {
    const val = v[k];
    if (val !== undefined) qs.set(k, val);
  }
  return qs;
}

/** A whole number in [min, max] from a flag, or a usage error that names the range. */
export function intFlag(raw: string | undefined, flag: string, fallback: number, min: number, max: number): number {
  if (raw === undefined) return fallback;
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= min && n <= max)) throw new UsageError(`--${flag} ${raw}: a whole number from ${min} to ${max}`);
  return n;
}

/** Terminal width for tables: the terminal's, COLUMNS, or 120 when output is not a terminal. */
export function terminalWidth(io: Io): number {
  const cols = Number(io.env['COLUMNS']);
  if (Number.isSafeInteger(cols) && cols >= 40) return cols;
  return process.stdout.isTTY && process.stdout.columns >= 40 ? process.stdout.columns : 120;
}

const clip = (s: string, w: number) => (w <= 0 ? '' : s.length <= w ? s : `${s.slice(0, Math.max(0, w - 1))}…`);

/** One row per entry: time, type, app, level or name, message or value, labels; the last two share what is left of `width`. */
export function entryRows(entries: StoredEntry[], width: number, header = true): string[] {
  const cells = entries.map((e) => [
    e.timestamp,
    e.type,
    e.app,
    e.type === 'metric' ? (e.name ?? '') : (e.level ?? ''),
    e.type === 'metric' ? `${e.value ?? ''}${e.unit ? ` ${e.unit}` : ''}` : (e.message ?? (typeof e.data === 'string' ? e.data : JSON.stringify(e.data))),
    Object.entries(e.labels).map(([k, v]) => `${k}=${v}`).join(','),
  ]);
  const heads = ['TIME', 'TYPE', 'APP', 'LEVEL/NAME', 'MESSAGE/VALUE', 'LABELS'];
  const all = header ? [heads, ...cells] : cells;
  const fixed = [0, 1, 2, 3].map((i) => Math.min(32, Math.max(header ? (heads[i] ?? '').length : 0, ...cells.map((c) => (c[i] ?? '').length))));
  const left = Math.max(20, width - fixed.reduce((a, b) => a + b + 2, 0));
  const labelsW = Math.min(Math.max(header ? 6 : 0, ...cells.map((c) => (c[5] ?? '').length)), Math.floor(left / 3));
  const msgW = Math.max(10, left - labelsW - 2);
  const widths = [...fixed, msgW, labelsW];
  return all.map((row) => row.map((c, i) => clip(c.replace(/\s+/g, ' '), widths[i] ?? 0).padEnd(i === 5 ? 0 : (widths[i] ?? 0))).join('  ').trimEnd());
}
