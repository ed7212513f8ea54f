import { describe, expect, it } from 'vitest';
import { LB_SECRET_HEADER, TrustedHops } from './trusted-hop.ts';

const SECRET = 'lb-secret-0123456789';

function req(headers: Record<string, string>, remoteAddress?: string) {
  return { headers: { ...headers } as Record<string, string | string[] | undefined>, socket: { remoteAddress } as never };
}

describe('TrustedHops', () => {
  it('with nothing configured trusts nobody and strips the LB-only headers', () => {
    const hops = new TrustedHops({});
    const r = req({ 'x-ingest-mirror': '1', 'x-ingest-version': 'v2-mirror', [LB_SECRET_HEADER]: SECRET, 'x-other': 'kept' }, '127.0.0.1');
    expect(hops.scrub(r)).toBe(false);
    expect(r.headers).toEqual({ 'x-other': 'kept' });
  });

  it('keeps them with the right secret (length-checked, constant-time), and always drops the secret itself', () => {
    const hops = new TrustedHops({ sharedSecret: SECRET });
    const ok = req({ 'x-ingest-mirror': '1', [LB_SECRET_HEADER]: SECRET }, '203.0.113.9');
    expect(hops.scrub(ok)).toBe(true);
    expect(ok.headers).toEqual({ 'x-ingest-mirror': '1' });
    for (const wrong of ['', 'lb-secret-012345678', 'lb-secret-0123456780', `${SECRET}x`]) {
      const r = req({ 'x-ingest-mirror': '1', [LB_SECRET_HEADER]: wrong }, '203.0.113.9');
      expect(hops.scrub(r), wrong).toBe(false);
      expect(r.headers).toEqual({});
    }
  });

  it('trusts a socket peer inside TRUSTED_PROXIES (IPv4, IPv4-mapped, IPv6), never X-Forwarded-For', () => {
    const hops = new TrustedHops({ proxies: ['10.0.0.0/8', '192.0.2.7', 'fd00::/8'] });
    for (const peer of ['10.1.2.3', '::ffff:10.9.9.9', '192.0.2.7', 'fd00::1']) expect(hops.trusted(req({}, peer)), peer).toBe(true);
    for (const peer of ['11.0.0.1', '192.0.2.8', '::1', '::ffff:127.0.0.1', undefined]) expect(hops.trusted(req({}, peer)), String(peer)).toBe(false);
    expect(hops.trusted(req({ 'x-forwarded-for': '10.1.2.3' }, '198.51.100.1'))).toBe(false);
  });
});
