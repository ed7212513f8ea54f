/** Small value helpers shared by the steps. None of them throws for any input. */

const PREVIEW_CHARS = 64;

/** A quoted, bounded rendering of user input for error messages, so a message never echoes a megabyte. */
export function preview(s: string): string {
  return s.length <= PREVIEW_CHARS ? JSON.stringify(s) : `${JSON.stringify(s.slice(0, PREVIEW_CHARS))}…`;
}

/** "got …" for a wrong-typed value, bounded like preview(). */
export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  switch (typeof v) {
    case 'string':
      return `string ${preview(v)}`;
    case 'number':
    case 'boolean':
      return `${typeof v} ${String(v)}`;
    case 'object':
      return 'an object';
    default:
      return typeof v;
  }
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/**
 * Whether `s` fits in `maxBytes` of UTF-8. One UTF-16 code unit encodes to at most 3 bytes and at
 * least 1, so most strings are decided from .length alone and only the rest are measured.
 */
export function fitsBytes(s: string, maxBytes: number): boolean {
  if (s.length * 3 <= maxBytes) return true;
  if (s.length > maxBytes) return false;
  return Buffer.byteLength(s, 'utf8') <= maxBytes;
}

/**
 * Assigns without the `__proto__` setter: JSON.parse makes "__proto__" an ordinary own key, and a
 * plain assignment would swallow it (or swap the output object's prototype) instead of copying it.
 */
export function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') {
    Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  } else {
    target[key] = value;
  }
}

/** Copies `source` minus the keys a type rule lifted into flat columns. */
export function copyExcept(source: Record<string, unknown>, lifted: ReadonlySet<string>, target: Record<string, unknown>): void {
  for (const key of Object.keys(source)) {
    if (lifted.has(key)) continue;
    const value = source[key];
    // An explicit undefined only exists for in-process callers; JSON would drop it anyway.
    if (value !== undefined) setOwn(target, key, value);
  }
}

export const JSON_OK = 0;
export const JSON_TOO_DEEP = 1;
export const JSON_NOT_DATA = 2;
/** A number JSON cannot hold: 1e309 in the producer's JSON parses to Infinity. */
export const JSON_NOT_FINITE = 3;

/**
 * Checks that `v` is JSON data (finite numbers, plain objects, no functions or cycles) nested at most
 * `maxDepth` deep, counting `v` itself as depth 1. Recursion is safe: the depth bound stops it first,
 * and a cycle is reported as too deep.
 */
export function checkJson(v: unknown, maxDepth: number): typeof JSON_OK | typeof JSON_TOO_DEEP | typeof JSON_NOT_DATA | typeof JSON_NOT_FINITE {
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return JSON_OK;
    case 'number':
      return Number.isFinite(v) ? JSON_OK : JSON_NOT_FINITE;
    case 'object': {
      if (v === null) return JSON_OK;
      if (maxDepth <= 0) return JSON_TOO_DEEP;
      if (Array.isArray(v)) {
        for (const item of v) {
          const r = checkJson(item, maxDepth - 1);
          if (r !== JSON_OK) return r;
        }
        return JSON_OK;
      }
      if (!isPlainObject(v)) return JSON_NOT_DATA;
      for (const key of Object.keys(v)) {
        const item = v[key];
        if (item === undefined) continue;
        const r = checkJson(item, maxDepth - 1);
        if (r !== JSON_OK) return r;
      }
      return JSON_OK;
    }
    default:
      return JSON_NOT_DATA;
  }
}

/**
 * Path (`data.a.b`, `data.list[2]`) of the first non-finite number in `v`, for the message of an
 * entry already known to hold one; bounded by the depth checkJson allowed.
 */
export function nonFinitePath(v: unknown, path: string): string | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? undefined : path;
  if (typeof v !== 'object' || v === null) return undefined;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const p = nonFinitePath(v[i], `${path}[${i}]`);
      if (p !== undefined) return p;
    }
    return undefined;
  }
  for (const key of Object.keys(v)) {
    const p = nonFinitePath((v as Record<string, unknown>)[key], `${path}.${key.length > 64 ? `${key.slice(0, 64)}…` : key}`);
    if (p !== undefined) return p;
  }
  return undefined;
}

export function isEmptyObject(o: Record<string, unknown>): boolean {
  for (const _ in o) return false;
  return true;
}
