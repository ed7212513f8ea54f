import { randomBytes } from 'node:crypto';

/** A body already serialized; HopClient sends its text as is. */
export class JsonText {
  constructor(readonly text: string) {}
}

// Per process and unguessable, so no producer string can be mistaken for a marker.
const NONCE = randomBytes(12).toString('hex');
const POS = `\u0000+inf:${NONCE}`;
const NEG = `\u0000-inf:${NONCE}`;

/**
 * JSON that keeps ±Infinity as 1e999 / -1e999 instead of null. A producer's 1e309 parses to
 * Infinity; JSON.stringify would forward it as null and the next hop would call a present but
 * overflowing number "missing". The next hop's JSON.parse reads 1e999 back as Infinity, so its
 * rules see what the producer sent. A replacer costs a call per value, so callers use this only
 * for bodies that may hold such a number (NaN cannot come out of JSON.parse; it stays null).
 */
export function jsonKeepingInfinity(value: unknown): JsonText {
  let found = false;
  const text = JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === 'number' && (v === Infinity || v === -Infinity)) {
      found = true;
      return v > 0 ? POS : NEG;
    }
    return v;
  });
  if (!found) return new JsonText(text);
  return new JsonText(text.replaceAll(JSON.stringify(POS), '1e999').replaceAll(JSON.stringify(NEG), '-1e999'));
}
