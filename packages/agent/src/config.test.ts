import { describe, expect, it } from 'vitest';
import { helpText, parseAgentConfig } from './config.ts';

const base = { INGEST_ENDPOINT: 'http://127.0.0.1:8080', INGEST_API_KEY: 'k' };

describe('parseAgentConfig', () => {
  it('reads the environment, with defaults for the rest', () => {
    const c = parseAgentConfig([], base);
    if (c === 'help' || c === 'version') throw new Error('unexpected');
    expect(c).toMatchObject({ host: '127.0.0.1', port: 8687, bodyLimitBytes: 8 * 1024 * 1024, lineProtocolApp: 'telegraf' });
    expect(c.client).toMatchObject({ endpoint: 'http://127.0.0.1:8080', apiKey: 'k', fullPolicy: 'block', fsync: 'perBatch', maxDiskBytes: 256 * 1024 * 1024, maxRetries: -1 });
  });

  it('lets flags win over the environment', () => {
    const c = parseAgentConfig(['--port', '9999', '--full-policy=dropOldest', '--max-disk-bytes', '64MiB'], { ...base, AGENT_PORT: '1234' });
    if (c === 'help' || c === 'version') throw new Error('unexpected');
    expect(c.port).toBe(9999);
    expect(c.client.fullPolicy).toBe('dropOldest');
    expect(c.client.maxDiskBytes).toBe(64 * 1024 * 1024);
  });

  it('names the missing or bad key', () => {
    expect(() => parseAgentConfig([], { INGEST_API_KEY: 'k' })).toThrow(/--endpoint \(or INGEST_ENDPOINT\) is required/);
    expect(() => parseAgentConfig(['--fsync', 'sometimes'], base)).toThrow(/--fsync \/ AGENT_FSYNC: sometimes/);
    expect(() => parseAgentConfig(['--body-limit', 'lots'], base)).toThrow(/AGENT_BODY_LIMIT/);
    expect(() => parseAgentConfig(['--nope'], base)).toThrow(/--help/);
  });

  it('answers --help, and the help names every flag and variable', () => {
    expect(parseAgentConfig(['--help'], {})).toBe('help');
    expect(parseAgentConfig(['--', '--help'], {})).toBe('help');
    expect(parseAgentConfig(['--version'], {})).toBe('version');
    const h = helpText();
    for (const s of ['--endpoint', 'INGEST_API_KEY', '--wal-dir', '--full-policy', 'POST /write']) expect(h).toContain(s);
  });
});
