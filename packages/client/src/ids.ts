import { randomFillSync } from 'node:crypto';

// Random hex is made 4 KiB of entropy at a time (one getrandom() and one native hex encode per
// ~200 ids, not per id): record() is on the producer's hot path.
const POOL_BYTES = 4096;
const pool = Buffer.allocUnsafe(POOL_BYTES);
let hex = '';
let hexPos = 0;
const HEX_PER_ID = 19;
const VARIANT = ['8', '9', 'a', 'b'];

let lastMs = -1;
let lastPrefix = '';

/**
 * A UUIDv7 (RFC 9562): 48-bit Unix ms, version 7, variant 10, and 74 random bits. Time-ordered,
 * so ids sort roughly by record time, and random enough that two producers never collide — which
 * is what makes the server's (tenant, id) deduplication safe to lean on for every retry.
 */
export function uuidv7(now = Date.now()): string {
  const ms = Math.max(0, Math.floor(now));
  if (ms !== lastMs) {
    const t = ms.toString(16).padStart(12, '0').slice(-12);
    lastPrefix = `${t.slice(0, 8)}-${t.slice(8, 12)}-7`;
    lastMs = ms;
  }
  if (hexPos + HEX_PER_ID > hex.length) {
    randomFillSync(pool);
    hex = pool.toString('hex');
    hexPos = 0;
  }
  const p = hexPos;
  hexPos += HEX_PER_ID;
  // The variant nibble keeps two random bits (10xx) from one random hex digit.
  const c = hex.charCodeAt(p + 18);
  const v = VARIANT[(c <= 57 ? c - 48 : c - 87) & 3]!;
  return `${lastPrefix}${hex.slice(p, p + 3)}-${v}${hex.slice(p + 3, p + 6)}-${hex.slice(p + 6, p + 18)}`;
}
