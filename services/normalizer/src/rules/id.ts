import { hash } from 'node:crypto';
import type { Step } from './envelope.ts';

/**
 * JSON with object keys sorted (UTF-16 code unit order), so the same entry hashes the same whatever
 * key order the producer's encoder chose. Only called on entries that passed validation, whose
 * `data` nesting is already bounded, so the recursion is shallow.
 */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) {
    let s = '[';
    for (let i = 0; i < v.length; i++) s += (i === 0 ? '' : ',') + canonicalJson(v[i]);
    return `${s}]`;
  }
  const o = v as Record<string, unknown>;
  let s = '{';
  let first = true;
  for (const key of Object.keys(o).sort()) {
    const item = o[key];
    if (item === undefined) continue;
    s += `${first ? '' : ','}${JSON.stringify(key)}:${canonicalJson(item)}`;
    first = false;
  }
  return `${s}}`;
}

// The wire fields that end up in the stored entry, in sorted order. Unknown top-level keys are left
// out on purpose: they are dropped, so they cannot make two stored entries differ, and a producer
// that stamps e.g. a retry counter on each attempt must still be deduplicated.
const HASHED_FIELDS = ['app', 'data', 'labels', 'source', 'timestamp', 'type'] as const;

/**
 * 'h-' + the first 32 hex digits (128 bits) of sha256(tenant + '\n' + canonical JSON of the wire
 * fields). Deterministic, so a producer retrying an id-less batch is deduplicated downstream; the
 * price is that two byte-identical entries in one tenant collapse into one.
 */
export function deterministicId(tenant: string, raw: Record<string, unknown>): string {
  let s = '{';
  let first = true;
  for (const key of HASHED_FIELDS) {
    const item = raw[key];
    if (item === undefined) continue;
    s += `${first ? '' : ','}"${key}":${canonicalJson(item)}`;
    first = false;
  }
  s += '}';
  return `h-${hash('sha256', `${tenant}\n${s}`, 'hex').slice(0, 32)}`;
}

export const assignId: Step = (raw, out) => {
  if (out.id === '') out.id = deterministicId(out.tenant, raw);
  return undefined;
};
