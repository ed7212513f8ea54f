import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { IngestError } from '@ingest/contracts';
import { decodeUtf8, exceedsDepth, parseEntries, readBody } from './read-body.ts';

const limits = { maxBytes: 1 << 20, maxEntries: 100, maxDepth: 8 };

async function codeOf(p: Promise<unknown> | (() => unknown)): Promise<string | undefined> {
  try {
    if (typeof p === 'function') p();
    else await p;
  } catch (e) {
    return e instanceof IngestError ? e.code : `not ingest: ${String(e)}`;
  }
  return undefined;
}

describe('readBody', () => {
  it('stops a gzip bomb at the decompressed limit', async () => {
    const bomb = gzipSync(Buffer.alloc(50 << 20));
    expect(bomb.length).toBeLessThan(100 << 10);
    expect(await codeOf(readBody(Readable.from([bomb]), 'gzip', 1 << 20))).toBe('INGEST_ERR_BODY_TOO_LARGE');
  });

  it('inflates gzip within the limit', async () => {
    const out = await readBody(Readable.from([gzipSync('[1,2,3]')]), 'gzip', 1024);
    expect(out.toString()).toBe('[1,2,3]');
  });

  it('counts identity bodies too', async () => {
    expect(await codeOf(readBody(Readable.from([Buffer.alloc(11)]), undefined, 10))).toBe('INGEST_ERR_BODY_TOO_LARGE');
    expect((await readBody(Readable.from([Buffer.alloc(10)]), undefined, 10)).length).toBe(10);
  });

  it('reports the decompressed total before keeping each chunk, and a throw refuses the body', async () => {
    const seen: number[] = [];
    const body = gzipSync(Buffer.alloc(300_000, 'a'));
    await readBody(Readable.from([body]), 'gzip', 1 << 20, (t) => seen.push(t));
    expect(seen.at(-1)).toBe(300_000);
    expect(seen).toEqual([...seen].sort((a, b) => a - b));
    const refuse = (t: number) => {
      if (t > 100) throw new IngestError('INGEST_ERR_EDGE_OVERLOADED');
    };
    expect(await codeOf(readBody(Readable.from([Buffer.alloc(60), Buffer.alloc(60)]), undefined, 1000, refuse))).toBe('INGEST_ERR_EDGE_OVERLOADED');
    expect(await codeOf(readBody(Readable.from([body]), 'gzip', 1 << 20, refuse))).toBe('INGEST_ERR_EDGE_OVERLOADED');
  });

  it('a compressed body whose source fails mid-way rejects instead of waiting forever', async () => {
    const half = gzipSync(Buffer.alloc(100_000, 'a')).subarray(0, 200);
    const src = new Readable({ read() {} });
    src.push(half);
    const reading = readBody(src, 'gzip', 1 << 20);
    src.destroy(new IngestError('INGEST_ERR_SHUTTING_DOWN'));
    expect(await codeOf(reading)).toBe('INGEST_ERR_SHUTTING_DOWN');
    const closed = new Readable({ read() {} });
    closed.push(half);
    const reading2 = readBody(closed, 'gzip', 1 << 20);
    closed.destroy();
    expect(await codeOf(reading2)).toBe('INGEST_ERR_DECOMPRESSION_FAILED');
  });

  it('refuses unknown encodings and corrupt gzip with their own codes', async () => {
    expect(await codeOf(readBody(Readable.from([Buffer.from('x')]), 'br', 10))).toBe('INGEST_ERR_UNSUPPORTED_ENCODING');
    expect(await codeOf(readBody(Readable.from([Buffer.from('not gzip')]), 'gzip', 100))).toBe('INGEST_ERR_DECOMPRESSION_FAILED');
  });
});

describe('parseEntries', () => {
  it('reads an array, an {entries} object and NDJSON', () => {
    expect(parseEntries('[{"a":1}]', 'json', limits)).toHaveLength(1);
    expect(parseEntries('{"entries":[{"a":1},{"a":2}]}', 'json', limits)).toHaveLength(2);
    expect(parseEntries('{"a":1}\n\n{"a":2}\n', 'ndjson', limits)).toHaveLength(2);
  });

  it('NDJSON sent as application/json is refused with a message naming the right content type', () => {
    expect(() => parseEntries('{"a":1}\n{"a":2}\n', 'json', limits)).toThrow(/send it with Content-Type: application\/x-ndjson/);
    // Plain broken JSON keeps the parser's own message.
    expect(() => parseEntries('{"a":', 'json', limits)).toThrow(expect.objectContaining({ code: 'INGEST_ERR_INVALID_JSON', message: expect.not.stringContaining('x-ndjson') }));
  });

  it('names the NDJSON line that is broken', async () => {
    let msg = '';
    try {
      parseEntries('{"a":1}\n{"a":', 'ndjson', limits);
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toContain('line 2');
  });

  it('refuses prototype keys, deep nesting, too many entries', async () => {
    expect(await codeOf(() => parseEntries('[{"__proto__":{"x":1}}]', 'json', limits))).toBe('INGEST_ERR_FORBIDDEN_KEY');
    expect(await codeOf(() => parseEntries('[[[[[[[[[[1]]]]]]]]]]', 'json', limits))).toBe('INGEST_ERR_NESTING_TOO_DEEP');
    expect(await codeOf(() => parseEntries(JSON.stringify(Array(101).fill({})), 'json', limits))).toBe('INGEST_ERR_TOO_MANY_ENTRIES');
  });

  it('refuses prototype keys however they are spelled, and only those', async () => {
    const forbidden = [
      '[{"__proto__":{"x":1}}]',
      '[{"a":{"b":{"__proto__":{"x":1}}}}]',
      '[{"\\u005f_proto__":{"x":1}}]',
      '[{"__pro\\u0074o__":{"x":1}}]',
      '[{"a":{"constructor":{"prototype":{"x":1}}}}]',
      '[{"\\u0063onstructor":{"prototype":{"x":1}}}]',
    ];
    for (const text of forbidden) {
      expect(await codeOf(() => parseEntries(text, 'json', limits)), text).toBe('INGEST_ERR_FORBIDDEN_KEY');
      expect(await codeOf(() => parseEntries(text.slice(1, -1), 'ndjson', limits)), text).toBe('INGEST_ERR_FORBIDDEN_KEY');
    }
    // The words as values, a "constructor" key without a prototype, and escapes of other keys pass.
    const fine = parseEntries('[{"m":"__proto__","n":"constructor"},{"constructor":"x"},{"\\u0061":1}]', 'json', limits) as Array<Record<string, unknown>>;
    expect(fine).toEqual<unknown[]>([{ m: '__proto__', n: 'constructor' }, { constructor: 'x' }, { a: 1 }]);
    expect(Object.getPrototypeOf(fine[0])).toBe(Object.prototype);
  });

  it('does not count brackets inside strings as nesting', () => {
    expect(exceedsDepth('[{"m":"[[[[[[[[[[[[[[[[[[[["}]', 3)).toBe(false);
    expect(exceedsDepth('[{"m":"\\"[[[["}]', 3)).toBe(false);
    // A string ending in an escaped backslash ends at the next quote: what follows is structure.
    expect(exceedsDepth('[{"m":"a\\\\"},[[[1]]]]', 3)).toBe(true);
    expect(exceedsDepth('[{"m":"a\\\\\\"[[[["}]', 3)).toBe(false);
    // An unterminated string is left to JSON.parse to report.
    expect(exceedsDepth('[{"m":"[[[[[[', 3)).toBe(false);
  });

  it('notes a number that may overflow a double (1e309 parses to Infinity), outside strings only', () => {
    const big = (text: string) => {
      const seen = { bigNumber: false };
      parseEntries(text, 'json', limits, seen);
      return seen.bigNumber;
    };
    expect(big('[{"v":1e309}]')).toBe(true);
    expect(big('[{"v":-1.5E+400}]')).toBe(true);
    expect(big(`[{"v":${'9'.repeat(309)}}]`)).toBe(true);
    expect(big('[{"v":1e30,"w":12345678901234567890,"s":"1e309","t":true,"f":false}]')).toBe(false);
  });
});

describe('decodeUtf8', () => {
  it('refuses invalid UTF-8', async () => {
    expect(await codeOf(() => decodeUtf8(Buffer.from([0xc3, 0x28])))).toBe('INGEST_ERR_INVALID_UTF8');
    expect(decodeUtf8(Buffer.from('héllo'))).toBe('héllo');
  });
});
