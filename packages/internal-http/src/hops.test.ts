import { describe, expect, it } from 'vitest';
import { IngestError } from '@ingest/contracts';
import { inProcessStage, splitWriteBody } from './hops.ts';

describe('the write hop body', () => {
  it('splits back into the rows and dead letters it was made of, as views of the body', () => {
    const body = Buffer.from('{"a":1}\n{"b":2}\n{"dl":1}\n');
    const { rows, rowBytes, deadLetters } = splitWriteBody(body, 2);
    expect(rows.map(String)).toEqual(['{"a":1}', '{"b":2}']);
    expect(rowBytes).toBe(14);
    expect(deadLetters.map(String)).toEqual(['{"dl":1}']);
    expect(rows[0]?.buffer).toBe(body.buffer);
  });

  it('takes a last line without its newline, and skips empty lines', () => {
    expect(splitWriteBody(Buffer.from('{"a":1}\n\n{"b":2}'), 2).rows.map(String)).toEqual(['{"a":1}', '{"b":2}']);
  });

  it('refuses a body with fewer lines than the rows it names', () => {
    expect(() => splitWriteBody(Buffer.from('{"a":1}\n'), 2)).toThrow(IngestError);
  });
});

describe('a stage called in the same process', () => {
  const log = { errors: 0, error() { this.errors++; } };
  it('passes catalog errors through as they are', async () => {
    const stage = inProcessStage('normalizer', log, () => Promise.reject(new IngestError('INGEST_ERR_NORMALIZER_OVERLOADED', 'full', { retryAfterSeconds: 1 })));
    await expect(stage()).rejects.toMatchObject({ code: 'INGEST_ERR_NORMALIZER_OVERLOADED' });
  });

  it('turns an unexpected failure into a retryable 503 and logs it', async () => {
    const stage = inProcessStage('normalizer', log, () => Promise.reject(new TypeError('bug')));
    await expect(stage()).rejects.toMatchObject({ code: 'INGEST_ERR_DEPENDENCY_UNAVAILABLE', statusCode: 503 });
    expect(log.errors).toBe(1);
  });
});
