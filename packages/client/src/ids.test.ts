import { describe, expect, it } from 'vitest';
import { uuidv7 } from './ids.ts';

describe('uuidv7', () => {
  it('has the RFC 9562 layout: version 7, variant 10', () => {
    for (let i = 0; i < 1000; i++) expect(uuidv7()).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('carries the millisecond timestamp in its first 48 bits', () => {
    const t = 1_700_000_123_456;
    const hex = uuidv7(t).replace(/-/g, '').slice(0, 12);
    expect(parseInt(hex, 16)).toBe(t);
  });

  it('sorts by time across milliseconds and does not repeat', () => {
    expect(uuidv7(1000) < uuidv7(1001)).toBe(true);
    const seen = new Set(Array.from({ length: 50_000 }, () => uuidv7(42)));
    expect(seen.size).toBe(50_000);
  });
});
