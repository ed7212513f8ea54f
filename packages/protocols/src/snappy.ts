import { ingestError, IngestError } from '@ingest/contracts';
import { uncompress } from 'snappyjs';

/**
 * Undoes snappy block compression (Loki's and remote write's protobuf bodies). The block's header
 * declares its uncompressed length; one over `maxBytes` is refused before anything is inflated.
 */
export function unsnappy(body: Uint8Array, maxBytes: number): Uint8Array {
  try {
    return uncompress(body, maxBytes);
  } catch (e) {
    const msg = String((e as Error).message);
    if (/length|exceed/i.test(msg) && declaredLength(body) > maxBytes) throw ingestError('INGEST_ERR_BODY_TOO_LARGE', [maxBytes]);
    if (e instanceof IngestError) throw e;
    throw ingestError('INGEST_ERR_INVALID_SNAPPY', [msg.slice(0, 80)]);
  }
}

/** The uncompressed length a snappy block declares (a little-endian base-128 varint at its start). */
function declaredLength(body: Uint8Array): number {
  let n = 0;
  for (let i = 0, shift = 1; i < Math.min(body.length, 5); i++, shift *= 128) {
    n += (body[i]! & 0x7f) * shift;
    if ((body[i]! & 0x80) === 0) return n;
  }
  return -1;
}
