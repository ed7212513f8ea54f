import { ingestError, IngestError } from '@ingest/contracts';
import type { ProtoType } from './proto.ts';

/** int64 as decimal strings (every digit), enums as numbers, bytes as Uint8Array. */
export const TO_OBJECT = { longs: String, enums: Number, defaults: false, arrays: false, oneofs: true } as const;

/** Decodes a binary protobuf message to a plain object; one that does not decode is a 400. */
export function decodeWith(type: ProtoType, bytes: Uint8Array): Record<string, unknown> {
  try {
    return type.toObject(type.decode(bytes), TO_OBJECT);
  } catch (e) {
    if (e instanceof IngestError) throw e;
    throw protoError(type.fullName.replace(/^\./, ''), String((e as Error).message));
  }
}

export function protoError(what: string, why: string): IngestError {
  return ingestError('INGEST_ERR_INVALID_PROTOBUF', [what, why.slice(0, 160)]);
}
