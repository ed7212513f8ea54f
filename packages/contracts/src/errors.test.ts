import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CATALOG, IngestError, ingestError } from './errors.ts';

const runbook = readFileSync(new URL('../../../runbooks/errors.md', import.meta.url), 'utf8');

describe('error catalog', () => {
  it.each(Object.keys(ERROR_CATALOG))('%s has a runbook entry', (code) => {
    expect(runbook).toMatch(new RegExp(`^\\| \`${code}\` \\|`, 'm'));
  });

  it('every code starts with INGEST_ERR_ and sheds carry 429 or 503', () => {
    for (const [code, e] of Object.entries(ERROR_CATALOG)) {
      expect(code).toMatch(/^INGEST_ERR_[A-Z0-9_]+$/);
      if (e.retryable && e.scope === 'request') expect([429, 500, 503]).toContain(e.status);
    }
  });

  it('fills template slots and carries Retry-After seconds into the body', () => {
    const e = ingestError('INGEST_ERR_TENANT_ENTRY_RATE', ['acme', 100, 2], { retryAfterSeconds: 2 });
    expect(e).toBeInstanceOf(IngestError);
    expect(e.statusCode).toBe(429);
    expect(e.message).toBe('tenant acme is over its entry rate of 100 entries/s; retry after 2 s');
    expect(e.toBody()).toEqual({ error: { code: 'INGEST_ERR_TENANT_ENTRY_RATE', message: e.message, retryable: true, retryAfterSeconds: 2 } });
  });
});
