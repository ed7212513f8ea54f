import { reject, type RejectedOutcome } from './limits.ts';
import { describe, fitsBytes, preview } from './values.ts';

/**
 * Field readers shared by the type rules. Each returns the value or an RejectedOutcome (an object, so
 * `typeof r === 'object'` tells them apart). `path` is what the producer sees in the message.
 * null is treated like an absent field, as JSON encoders commonly emit it for unset optionals.
 */

function tooLarge(path: string, value: string, maxBytes: number): RejectedOutcome {
  return reject('INGEST_ERR_ENTRY_TOO_LARGE', `${path} is ${Buffer.byteLength(value, 'utf8')} bytes; the limit is ${maxBytes} bytes`);
}

export function optionalString(value: unknown, path: string, maxBytes: number): string | undefined | RejectedOutcome {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') return reject('INGEST_ERR_ENTRY_FIELD_TYPE', `${path} must be a string, got ${describe(value)}`);
  if (!fitsBytes(value, maxBytes)) return tooLarge(path, value, maxBytes);
  return value;
}

/** A required string; `nonEmpty` makes '' count as missing (names must name something). */
export function requiredString(value: unknown, path: string, maxBytes: number, expected: string, nonEmpty = false): string | RejectedOutcome {
  if (value === undefined || value === null || (nonEmpty && value === '')) {
    return reject('INGEST_ERR_ENTRY_FIELD_MISSING', `${path} is required: ${expected}`);
  }
  if (typeof value !== 'string') return reject('INGEST_ERR_ENTRY_FIELD_TYPE', `${path} must be ${expected}, got ${describe(value)}`);
  if (!fitsBytes(value, maxBytes)) return tooLarge(path, value, maxBytes);
  return value;
}

/** A closed vocabulary with aliases. Keys of `aliases` are lower case; matching ignores case. */
export interface Vocabulary {
  readonly canonical: readonly string[];
  readonly aliases: ReadonlyMap<string, string>;
}

export function vocabulary(canonical: readonly string[], aliases: Record<string, string>): Vocabulary {
  const map = new Map<string, string>(canonical.map((c) => [c, c]));
  for (const [alias, target] of Object.entries(aliases)) map.set(alias, target);
  return { canonical, aliases: map };
}

// No canonical value or alias is longer than this, so longer input is rejected without lower-casing
// (and copying) a possibly huge string.
const MAX_VOCABULARY_WORD = 16;

export function enumValue(value: string, path: string, vocab: Vocabulary): string | RejectedOutcome {
  const hit = value.length <= MAX_VOCABULARY_WORD ? (vocab.aliases.get(value) ?? vocab.aliases.get(value.toLowerCase())) : undefined;
  if (hit !== undefined) return hit;
  return reject('INGEST_ERR_ENTRY_ENUM', `${path} ${preview(value)} is not one of ${vocab.canonical.join(', ')}`);
}

export function optionalEnum(value: unknown, path: string, vocab: Vocabulary, fallback: string): string | RejectedOutcome {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'string') {
    return reject('INGEST_ERR_ENTRY_FIELD_TYPE', `${path} must be a string, one of ${vocab.canonical.join(', ')}; got ${describe(value)}`);
  }
  return enumValue(value, path, vocab);
}

export function requiredEnum(value: unknown, path: string, vocab: Vocabulary): string | RejectedOutcome {
  if (value === undefined || value === null) {
    return reject('INGEST_ERR_ENTRY_FIELD_MISSING', `${path} is required: one of ${vocab.canonical.join(', ')}`);
  }
  return optionalEnum(value, path, vocab, '');
}
