import { describe, expect, it } from 'vitest';
import { insertRefusal } from './refusal.ts';

describe('insertRefusal', () => {
  it('names data errors, as @clickhouse/client and chDB report them (code as a string)', () => {
    expect(insertRefusal({ code: '25', type: 'CANNOT_PARSE_ESCAPE_SEQUENCE', message: 'Cannot parse escape sequence' })).toEqual({
      type: 'CANNOT_PARSE_ESCAPE_SEQUENCE',
      code: 25,
      message: 'Cannot parse escape sequence',
    });
    expect(insertRefusal({ code: '53', message: 'x' })?.type).toBe('TYPE_MISMATCH');
  });

  it('treats server state, network errors and unknown codes as transient (retried, never dead-lettered)', () => {
    expect(insertRefusal({ code: '252', type: 'TOO_MANY_PARTS' })).toBeUndefined();
    expect(insertRefusal({ code: '241', type: 'MEMORY_LIMIT_EXCEEDED' })).toBeUndefined();
    expect(insertRefusal({ code: '159', type: 'TIMEOUT_EXCEEDED' })).toBeUndefined();
    expect(insertRefusal({ code: '16', type: 'NO_SUCH_COLUMN_IN_TABLE' })).toBeUndefined();
    expect(insertRefusal(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }))).toBeUndefined();
    expect(insertRefusal(new Error('timeout'))).toBeUndefined();
    expect(insertRefusal(undefined)).toBeUndefined();
  });
});
