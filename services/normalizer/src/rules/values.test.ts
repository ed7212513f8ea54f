import { describe, it, expect } from 'vitest';
import { fitsBytes, preview } from './values.ts';

describe('fitsBytes', () => {
  it.each([
    ['', 0, true],
    ['abc', 3, true],
    ['abcd', 3, false],
    ['é', 1, false], // 2 bytes
    ['é', 2, true],
    ['€€', 5, false], // 6 bytes, 2 characters
    ['€€', 6, true],
    ['😀', 3, false], // 4 bytes, 2 UTF-16 units
    ['😀', 4, true],
    ['€'.repeat(100), 256, false],
    ['€'.repeat(85), 256, true],
  ])('%j within %d bytes: %s', (s, max, expected) => {
    expect(fitsBytes(s, max)).toBe(expected);
    expect(Buffer.byteLength(s) <= max).toBe(expected);
  });
});

describe('preview', () => {
  it('quotes short input whole and cuts long input at 64 characters', () => {
    expect(preview('loud')).toBe('"loud"');
    expect(preview('x'.repeat(100))).toBe(`"${'x'.repeat(64)}"…`);
  });
});
