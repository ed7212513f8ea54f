import { describe, expect, it } from 'vitest';
import { JsonText, jsonKeepingInfinity } from './json-text.ts';

describe('jsonKeepingInfinity', () => {
  it('forwards ±Infinity so the next hop parses it back, not as null', () => {
    const body = { entries: [{ data: { value: JSON.parse('1e309') as number, list: [1, -Infinity], s: 'Infinity', n: null } }] };
    const t = jsonKeepingInfinity(body);
    expect(t).toBeInstanceOf(JsonText);
    expect(t.text).toBe('{"entries":[{"data":{"value":1e999,"list":[1,-1e999],"s":"Infinity","n":null}}]}');
    expect(JSON.parse(t.text)).toEqual(body);
  });

  it('is plain JSON when there is nothing to keep', () => {
    const body = { a: [1, 'x', { b: null }] };
    expect(jsonKeepingInfinity(body).text).toBe(JSON.stringify(body));
  });
});
