import { describe, expect, it } from 'vitest';
import { credentialFor } from './key-index.ts';

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('credentialFor: the key as each route\'s clients send it', () => {
  it('takes Bearer on every route', () => {
    expect(credentialFor('/v2/ingest', 'Bearer k1', {})).toBe('k1');
    expect(credentialFor('/api/v2/write', 'Bearer k1', {})).toBe('k1');
  });

  it('takes "Token <key>" only on the Influx write routes', () => {
    expect(credentialFor('/api/v2/write', 'Token k2', {})).toBe('k2');
    expect(credentialFor('/write', 'Token k2', {})).toBe('k2');
    expect(credentialFor('/v2/ingest', 'Token k2', {})).toBeUndefined();
    expect(credentialFor('/v1/logs', 'Token k2', {})).toBeUndefined();
  });

  it('takes Basic (the password) and the p parameter only on the Influx 1.x route', () => {
    expect(credentialFor('/write', basic('telegraf', 'k3'), {})).toBe('k3');
    expect(credentialFor('/write', undefined, { u: 'telegraf', p: 'k4' })).toBe('k4');
    expect(credentialFor('/api/v2/write', basic('telegraf', 'k3'), {})).toBeUndefined();
    expect(credentialFor('/api/v2/write', undefined, { p: 'k4' })).toBeUndefined();
    expect(credentialFor('/v2/ingest', undefined, { p: 'k4' })).toBeUndefined();
    expect(credentialFor('/write', basic('telegraf', ''), {})).toBeUndefined();
  });

  it('an unmatched route gets Bearer only', () => {
    expect(credentialFor(undefined, 'Token k2', { p: 'k4' })).toBeUndefined();
  });
});
