import { ingestError, type WireEntry } from '@ingest/contracts';
import type { Decoded, DecodeOptions } from './types.ts';

/** Adds an entry and the item it came from, refusing the body whole past maxEntries (as /v2/ingest does). */
export function push(out: Decoded, entry: WireEntry, origin: number, opts: DecodeOptions): void {
  if (out.entries.length >= opts.maxEntries) throw ingestError('INGEST_ERR_TOO_MANY_ENTRIES', [opts.maxEntries]);
  out.entries.push(entry);
  out.origins.push(origin);
}
