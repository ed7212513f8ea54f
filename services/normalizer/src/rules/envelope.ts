import { ENTRY_TYPES, type EntryType, type NormalizedEntry } from '@ingest/contracts';
import { MAX_ID_LENGTH, reject, type EntryLimits, type RejectedOutcome } from './limits.ts';
import { optionalString } from './fields.ts';
import { normalizeTimestamp } from './timestamp.ts';
import { JSON_NOT_FINITE, JSON_OK, JSON_TOO_DEEP, checkJson, describe, fitsBytes, isPlainObject, nonFinitePath, preview, setOwn } from './values.ts';

/**
 * Envelope steps: the fields every entry type shares. Each reads the raw entry, fills its part of
 * the output, and returns a rejection or undefined. Unknown top-level keys are never read or copied.
 */
export type RawEntry = Record<string, unknown>;
export type Step = (raw: RawEntry, out: NormalizedEntry, limits: EntryLimits) => RejectedOutcome | undefined;

const TYPE_LIST = ENTRY_TYPES.join(', ');
const TYPES: ReadonlySet<string> = new Set(ENTRY_TYPES);

function isEntryType(v: string): v is EntryType {
  return TYPES.has(v);
}

export const checkType: Step = (raw, out) => {
  const type = raw.type;
  if (type === undefined || type === null) return reject('INGEST_ERR_ENTRY_FIELD_MISSING', `type is required: one of ${TYPE_LIST}`);
  if (typeof type !== 'string') return reject('INGEST_ERR_ENTRY_TYPE', `type must be a string, one of ${TYPE_LIST}; got ${describe(type)}`);
  if (!isEntryType(type)) return reject('INGEST_ERR_ENTRY_TYPE', `type ${preview(type)} is not one of ${TYPE_LIST}`);
  out.type = type;
  return undefined;
};

export const checkTimestamp: Step = (raw, out, limits) => {
  const ts = normalizeTimestamp(raw.timestamp, out.receivedAt, limits);
  if (typeof ts === 'object') return ts;
  out.ts = ts;
  return undefined;
};

export const checkAppAndSource: Step = (raw, out, limits) => {
  const app = optionalString(raw.app, 'app', limits.maxAppBytes);
  if (typeof app === 'object') return app;
  const source = optionalString(raw.source, 'source', limits.maxSourceBytes);
  if (typeof source === 'object') return source;
  out.app = app ?? '';
  out.source = source ?? '';
  return undefined;
};

// Prometheus-style keys plus '.' and '-', which OpenTelemetry attribute names use. No nested
// quantifiers, so matching is linear; length is bounded before the regex runs anyway.
const LABEL_KEY_RE = /^[a-zA-Z_][a-zA-Z0-9_.-]*$/;

export const checkLabels: Step = (raw, out, limits) => {
  const labels = raw.labels;
  if (labels === undefined || labels === null) return undefined;
  if (!isPlainObject(labels)) {
    return reject('INGEST_ERR_ENTRY_LABELS', `labels must be an object of string keys to string values, got ${describe(labels)}`);
  }
  // The cheap bound first: the key count (one native call) before any key or value is read,
  // tested or measured, so 300k labels cost one Object.keys, not 300k regex tests and copies.
  const keys = Object.keys(labels);
  if (keys.length > limits.maxLabels) {
    return reject('INGEST_ERR_ENTRY_LABELS', `labels has ${keys.length} keys; at most ${limits.maxLabels} are accepted, move the rest into data`);
  }
  let bytes = 0;
  for (const key of keys) {
    if (!fitsBytes(key, limits.maxLabelKeyBytes) || !LABEL_KEY_RE.test(key)) {
      return reject(
        'INGEST_ERR_ENTRY_LABELS',
        `labels key ${preview(key)} must match ${LABEL_KEY_RE.source} and be at most ${limits.maxLabelKeyBytes} bytes`,
      );
    }
    const value = labels[key];
    if (typeof value !== 'string') {
      return reject('INGEST_ERR_ENTRY_LABELS', `labels.${key} must be a string, got ${describe(value)}; put structured values in data`);
    }
    if (!fitsBytes(value, limits.maxLabelValueBytes)) {
      return reject(
        'INGEST_ERR_ENTRY_LABELS',
        `labels.${key} is ${Buffer.byteLength(value, 'utf8')} bytes; the limit is ${limits.maxLabelValueBytes} bytes`,
      );
    }
    // At most maxLabels pairs, each already within its own bound: measuring them is cheap now.
    bytes += Buffer.byteLength(key, 'utf8') + Buffer.byteLength(value, 'utf8');
    if (bytes > limits.maxLabelBytes) {
      return reject('INGEST_ERR_ENTRY_LABELS', `labels are more than ${limits.maxLabelBytes} bytes (keys and values, UTF-8); move large values into data`);
    }
    setOwn(out.labels, key, value);
  }
  return undefined;
};

/** Validates a producer id; an absent one is assigned later, once the entry is known to be valid. */
export const checkProducerId: Step = (raw, out) => {
  const id = raw.id;
  if (id === undefined || id === null) return undefined;
  const expected = `id must be a string of 1 to ${MAX_ID_LENGTH} printable ASCII characters (or omitted)`;
  if (typeof id !== 'string') return reject('INGEST_ERR_ENTRY_ID', `${expected}, got ${describe(id)}`);
  if (id.length === 0 || id.length > MAX_ID_LENGTH) return reject('INGEST_ERR_ENTRY_ID', `${expected}, got ${id.length} characters`);
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) return reject('INGEST_ERR_ENTRY_ID', `${expected}; character ${i} is not`);
  }
  out.id = id;
  return undefined;
};

const DATA_HINT: Record<EntryType, string> = {
  log: '{ "message": "…", "level": "info" }',
  metric: '{ "name": "…", "value": 1, "unit": "ms" }',
  event: '{ "name": "…", "attributes": {} }',
  health: '{ "status": "ok", "check": "…" }',
  alert: '{ "name": "…", "severity": "warning" }',
};

export const checkData: Step = (raw, out, limits) => {
  const data = raw.data;
  if (data === undefined || data === null) {
    return reject('INGEST_ERR_ENTRY_FIELD_MISSING', `data is required for a ${out.type} entry, e.g. ${DATA_HINT[out.type]}`);
  }
  if (!isPlainObject(data)) return reject('INGEST_ERR_ENTRY_FIELD_TYPE', `data must be an object, e.g. ${DATA_HINT[out.type]}; got ${describe(data)}`);
  const shape = checkJson(data, limits.maxDataDepth);
  if (shape === JSON_TOO_DEEP) return reject('INGEST_ERR_ENTRY_TOO_LARGE', `data nests deeper than ${limits.maxDataDepth} levels`);
  if (shape === JSON_NOT_FINITE) {
    // JSON has no Infinity; a producer's 1e309 overflows a double when parsed. Name the field.
    return reject('INGEST_ERR_ENTRY_VALUE', `${nonFinitePath(data, 'data') ?? 'data'} is not a finite number (a JSON number beyond ±1.8e308 overflows a 64-bit float)`);
  }
  if (shape !== JSON_OK) return reject('INGEST_ERR_ENTRY_FIELD_TYPE', 'data holds a value that is not JSON (a function or a class instance)');
  return undefined;
};
