import { ENTRY_TYPES, type EntryType } from '@ingest/contracts';
import { IngestClientError } from './errors.ts';
import { uuidv7 } from './ids.ts';

/** An entry as the caller gives it; `id` and `timestamp` are filled in by record() when absent. */
export interface EntryInput {
  id?: string;
  type: EntryType;
  timestamp?: string | number;
  app?: string;
  source?: string;
  data: Record<string, unknown>;
  labels?: Record<string, string>;
}

const TYPES: ReadonlySet<string> = new Set(ENTRY_TYPES);

/**
 * Checks an entry, fills in `id` (a UUIDv7) and `timestamp` (`now`) when absent and serializes it
 * to the bytes the WAL stores and the edge receives. Throws CLIENT_ERR_INVALID_ENTRY or
 * CLIENT_ERR_ENTRY_TOO_LARGE.
 */
export function encodeEntry(entry: EntryInput, maxEntryBytes: number, now: number): { payload: Buffer; id: string } {
  if (typeof entry !== 'object' || entry === null) throw new IngestClientError('CLIENT_ERR_INVALID_ENTRY', ['an entry must be an object']);
  if (!TYPES.has(entry.type)) throw new IngestClientError('CLIENT_ERR_INVALID_ENTRY', [`type must be one of ${ENTRY_TYPES.join(', ')}`]);
  if (typeof entry.data !== 'object' || entry.data === null || Array.isArray(entry.data)) throw new IngestClientError('CLIENT_ERR_INVALID_ENTRY', ['data must be an object']);
  const id = entry.id ?? uuidv7(now);
  // Explicit nulls take the copying path, so the filled-in value is the only one serialized.
  const copy = entry.id === null || entry.timestamp === null;
  let json: string;
  try {
    json = copy ? JSON.stringify({ ...entry, id, timestamp: entry.timestamp ?? now }) : JSON.stringify(entry);
  } catch (e) {
    throw new IngestClientError('CLIENT_ERR_INVALID_ENTRY', [(e as Error).message], { cause: e });
  }
  // Splicing id and timestamp into the serialized object saves copying the entry on the hot
  // path. `json` is an object with at least type and data, so "{" + ours + "," + rest is valid.
  if (!copy && (entry.id === undefined || entry.timestamp === undefined)) {
    if (json.length < 3 || json.charCodeAt(0) !== 123) throw new IngestClientError('CLIENT_ERR_INVALID_ENTRY', ['the entry must serialize to a JSON object']);
    const head = entry.id === undefined ? (entry.timestamp === undefined ? `{"id":"${id}","timestamp":${now},` : `{"id":"${id}",`) : `{"timestamp":${now},`;
    json = head + json.slice(1);
  }
  // The edge refuses a whole request holding these keys (prototype pollution); refusing the one
  // entry here keeps it from sinking the batch it would land in. Keys serialize as "k": only.
  if (json.includes('"__proto__":') || (json.includes('"constructor":') && json.includes('"prototype":'))) {
    throw new IngestClientError('CLIENT_ERR_INVALID_ENTRY', ['the keys "__proto__" and constructor.prototype are refused by the edge']);
  }
  const payload = Buffer.from(json, 'utf8');
  if (payload.length > maxEntryBytes) throw new IngestClientError('CLIENT_ERR_ENTRY_TOO_LARGE', [payload.length, maxEntryBytes]);
  return { payload, id };
}
