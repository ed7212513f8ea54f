import type { Readable } from 'node:stream';
import { createGunzip, createInflate } from 'node:zlib';
import { Decompress as ZstdDecompress } from 'fzstd';
import sjson from 'secure-json-parse';
import { ingestError, IngestError, type RefusedItem } from '@ingest/contracts';

export interface BodyLimits {
  /** Bytes after decompression. */
  maxBytes: number;
  maxEntries: number;
  maxDepth: number;
}

export interface ParsedBody {
  entries: unknown[];
  /** Protocol items that could not become entries, for the normalizer to count and dead-letter. */
  refused?: RefusedItem[];
  /** For protocol bodies: the item each entry came from (see NormalizeRequest.origins). */
  origins?: number[];
  /** Decompressed size. */
  bytes: number;
  /** The text held a number that may have parsed to ±Infinity (see exceedsDepth). */
  bigNumbers?: boolean;
}

export type BodyFormat = 'json' | 'ndjson';

export function formatOf(contentType: string | undefined): BodyFormat | undefined {
  const ct = (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  if (ct === 'application/json' || ct === '') return ct === '' ? undefined : 'json';
  if (ct === 'application/x-ndjson' || ct === 'application/ndjson' || ct === 'application/jsonl') return 'ndjson';
  return undefined;
}

/**
 * Called with the decompressed total before each chunk is kept; throws to refuse the body (the
 * edge charges its in-flight budget here, so a body holds budget for what it has read, not for
 * what it declared).
 */
export type OnBytes = (total: number) => void;

/**
 * Reads the raw request stream into one buffer, decompressing on the way and counting the
 * *decompressed* bytes as they come (a 1000:1 bomb is stopped at the limit, not after inflating).
 * The compressed side is bounded by the same limit: compression never makes a valid body bigger.
 */
export async function readBody(payload: Readable, encoding: string | undefined, maxBytes: number, onBytes?: OnBytes): Promise<Buffer> {
  const enc = (encoding ?? 'identity').trim().toLowerCase();
  const chunks: Buffer[] = [];
  let total = 0;
  let compressed = 0;
  const tooLarge = () => ingestError('INGEST_ERR_BODY_TOO_LARGE', [maxBytes]);

  const push = (b: Uint8Array) => {
    total += b.byteLength;
    if (total > maxBytes) throw tooLarge();
    onBytes?.(total);
    chunks.push(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
  };

  if (enc === 'identity' || enc === '') {
    for await (const chunk of payload) push(chunk as Buffer);
    return Buffer.concat(chunks, total);
  }

  if (enc === 'zstd') {
    const z = new ZstdDecompress((data) => push(data));
    try {
      for await (const chunk of payload) {
        compressed += (chunk as Buffer).byteLength;
        if (compressed > maxBytes) throw tooLarge();
        z.push(chunk as Uint8Array);
      }
      z.push(new Uint8Array(0), true);
    } catch (e) {
      if (e instanceof IngestError) throw e;
      throw ingestError('INGEST_ERR_DECOMPRESSION_FAILED', ['zstd', (e as Error).message]);
    }
    return Buffer.concat(chunks, total);
  }

  if (enc === 'gzip' || enc === 'x-gzip' || enc === 'deflate') {
    const d = enc === 'deflate' ? createInflate() : createGunzip();
    const onData = (chunk: Buffer) => {
      compressed += chunk.byteLength;
      if (compressed > maxBytes) d.destroy(tooLarge());
    };
    // pipe() does not pass on the source's failure: a client gone mid-body (or a body cut by the
    // edge) must end the decoder too, or this read would wait forever.
    const onSourceError = (e: Error) => d.destroy(e);
    const onSourceClose = () => {
      if (!payload.readableEnded) d.destroy(new Error('the body ended before it was complete'));
    };
    payload.on('data', onData);
    payload.once('error', onSourceError);
    payload.once('close', onSourceClose);
    payload.pipe(d);
    try {
      // Iterating the decoder applies backpressure to the request and stops at the first error,
      // including our own "too large" thrown from push().
      for await (const chunk of d) push(chunk as Buffer);
    } catch (e) {
      if (e instanceof IngestError) throw e;
      throw ingestError('INGEST_ERR_DECOMPRESSION_FAILED', [enc, (e as Error).message.slice(0, 100)]);
    } finally {
      payload.off('data', onData);
      payload.off('error', onSourceError);
      payload.off('close', onSourceClose);
      payload.unpipe(d);
      d.destroy();
    }
    return Buffer.concat(chunks, total);
  }

  throw ingestError('INGEST_ERR_UNSUPPORTED_ENCODING', [enc.slice(0, 32)]);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function decodeUtf8(buf: Buffer): string {
  try {
    return utf8.decode(buf);
  } catch {
    throw ingestError('INGEST_ERR_INVALID_UTF8');
  }
}

/** What one pass over JSON text noticed besides its depth. */
export interface JsonScan {
  /** A number literal that may overflow a double (JSON.parse makes it ±Infinity). */
  bigNumber: boolean;
  /**
   * A string spelled `__proto__` or `constructor`, or a `\u` escape anywhere (which could spell
   * one): only such a text needs the prototype-poisoning checks after parsing.
   */
  protoSuspect?: boolean;
}

/**
 * Maximum nesting of JSON text, found by one pass that skips strings. Run before JSON.parse so a
 * 10,000-deep document is refused cheaply instead of exhausting the parser's stack. The same pass
 * notes in `seen.bigNumber` a number literal that may overflow a double (a 3-digit exponent or 309
 * digits), which JSON.parse turns into Infinity: rare, so only then does the hop pay to keep it;
 * and in `seen.protoSuspect` a string that is a prototype key, so the other texts skip those
 * checks (two regex passes over the whole body, measured at ~0.5 µs per entry).
 */
export function exceedsDepth(text: string, maxDepth: number, seen?: JsonScan): boolean {
  let depth = 0;
  // Digits of the number being read, and of its exponent (-1: not in an exponent).
  let digits = 0;
  let expDigits = -1;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 34 /* " */) {
      // Strings are most of a body: skip each with a native search for its closing quote, one
      // not escaped (preceded by an even number of backslashes).
      let end = text.indexOf('"', i + 1);
      while (end !== -1) {
        let slashes = 0;
        for (let j = end - 1; text.charCodeAt(j) === 92 /* \ */; j--) slashes++;
        if (slashes % 2 === 0) break;
        end = text.indexOf('"', end + 1);
      }
      if (end === -1) return false; // unterminated: JSON.parse reports it
      const len = end - i - 1;
      if (seen && ((len === 9 && text.startsWith('__proto__', i + 1)) || (len === 11 && text.startsWith('constructor', i + 1)))) seen.protoSuspect = true;
      i = end;
      digits = 0;
      expDigits = -1;
      continue;
    }
    if (c >= 48 && c <= 57) {
      digits++;
      if (expDigits >= 0) expDigits++;
      if ((digits >= 309 || expDigits >= 3) && seen) seen.bigNumber = true;
      continue;
    }
    if ((c === 101 || c === 69) /* e E */ && digits > 0) {
      expDigits = 0;
      continue;
    }
    if (c === 43 || c === 45 || c === 46 /* + - . */) continue;
    digits = 0;
    expDigits = -1;
    if (c === 123 || c === 91) {
      if (++depth > maxDepth) return true;
    } else if (c === 125 || c === 93) depth--;
    else if (c === 10 /* \n */ && depth <= 0) depth = 0; // NDJSON line boundary
  }
  return false;
}

/** Parses JSON that may come from anyone: a `__proto__` key, or `constructor.prototype`, is refused. */
export function parseJson(text: string): unknown {
  return parseChecked(text, true);
}

/**
 * `protoChecks` false only for text that a scan found free of prototype keys (JsonScan.protoSuspect):
 * then JSON.parse alone gives the same result.
 */
function parseChecked(text: string, protoChecks: boolean): unknown {
  try {
    return protoChecks ? sjson.parse(text, undefined, { protoAction: 'error', constructorAction: 'error' }) : JSON.parse(text);
  } catch (e) {
    const msg = (e as Error).message;
    if (/prototype|constructor/i.test(msg)) {
      throw ingestError('INGEST_ERR_FORBIDDEN_KEY', [/constructor/i.test(msg) ? 'constructor' : '__proto__']);
    }
    throw ingestError('INGEST_ERR_INVALID_JSON', [msg.slice(0, 120)]);
  }
}

/**
 * Parses untrusted JSON after one bounded scan: refused when nested deeper than `maxDepth`, or when it
 * holds a prototype key; `seen.bigNumber` as exceedsDepth reports it.
 */
export function parseBoundedJson(text: string, maxDepth: number, seen?: { bigNumber: boolean }): unknown {
  const scan: JsonScan = { bigNumber: false, protoSuspect: false };
  if (exceedsDepth(text, maxDepth, scan)) throw ingestError('INGEST_ERR_NESTING_TOO_DEEP', [maxDepth]);
  if (seen) seen.bigNumber = scan.bigNumber;
  return parseChecked(text, needsProtoChecks(text, scan));
}

function needsProtoChecks(text: string, scan: JsonScan): boolean {
  return scan.protoSuspect === true || text.includes('\\u');
}

/** Turns a decoded body into entries: JSON array, {"entries": [...]}, or NDJSON lines. */
export function parseEntries(text: string, format: BodyFormat, limits: BodyLimits, seen?: { bigNumber: boolean }): unknown[] {
  const scan: JsonScan = { bigNumber: false, protoSuspect: false };
  if (exceedsDepth(text, limits.maxDepth, scan)) throw ingestError('INGEST_ERR_NESTING_TOO_DEEP', [limits.maxDepth]);
  if (seen) seen.bigNumber = scan.bigNumber;
  const protoChecks = needsProtoChecks(text, scan);
  let entries: unknown[];
  if (format === 'ndjson') {
    entries = [];
    let lineNo = 0;
    for (const line of text.split('\n')) {
      lineNo++;
      const t = line.trim();
      if (t === '') continue;
      if (entries.length >= limits.maxEntries) throw ingestError('INGEST_ERR_TOO_MANY_ENTRIES', [limits.maxEntries]);
      try {
        entries.push(parseChecked(t, protoChecks));
      } catch (e) {
        if (e instanceof IngestError && e.code === 'INGEST_ERR_INVALID_JSON') {
          throw ingestError('INGEST_ERR_INVALID_JSON', [`line ${lineNo}: ${e.message.slice(0, 100)}`]);
        }
        throw e;
      }
    }
  } else {
    let v: unknown;
    try {
      v = parseChecked(text, protoChecks);
    } catch (e) {
      if (e instanceof IngestError && e.code === 'INGEST_ERR_INVALID_JSON' && looksLikeNdjson(text)) {
        throw ingestError('INGEST_ERR_INVALID_JSON', ['the body is NDJSON (one JSON value per line) sent as application/json; send it with Content-Type: application/x-ndjson']);
      }
      throw e;
    }
    if (Array.isArray(v)) entries = v;
    else if (v !== null && typeof v === 'object' && Array.isArray((v as { entries?: unknown }).entries)) entries = (v as { entries: unknown[] }).entries;
    else throw ingestError('INGEST_ERR_INVALID_BODY', [`got ${v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v}`]);
  }
  if (entries.length === 0) throw ingestError('INGEST_ERR_EMPTY_BATCH');
  if (entries.length > limits.maxEntries) throw ingestError('INGEST_ERR_TOO_MANY_ENTRIES', [limits.maxEntries]);
  return entries;
}

/** Whether a body that failed to parse as one JSON value is several, one per line (NDJSON). */
function looksLikeNdjson(text: string): boolean {
  const t = text.trim();
  const nl = t.indexOf('\n');
  if (nl < 0) return false;
  try {
    JSON.parse(t.slice(0, nl));
    return true;
  } catch {
    return false;
  }
}
