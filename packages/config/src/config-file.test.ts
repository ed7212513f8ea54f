import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { endpointsText, ENDPOINTS_FILE, takeConfigFlag, withConfigFile, withRunningEndpoints } from './config-file.ts';
import { loadConfig } from './config.ts';
import { ConfigError } from './env.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'config-file-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('config file', () => {
  it('is read under the environment: the file fills in, the environment wins; loadConfig reads it through INGEST_CONFIG', async () => {
    const file = path.join(dir, 'ingest.env');
    await writeFile(file, '# ports for a second product\nEDGE_PORT=18080\nSINK_PORT=18082\nSINK_URL="http://10.0.0.5:18082"\n');
    const env = withConfigFile({ INGEST_CONFIG: file, SINK_PORT: '28082' });
    expect(env['EDGE_PORT']).toBe('18080');
    expect(env['SINK_PORT']).toBe('28082');
    expect(env['SINK_URL']).toBe('http://10.0.0.5:18082');
    const cfg = loadConfig({ INGEST_CONFIG: file });
    expect(cfg.edge.port).toBe(18080);
    expect(cfg.normalizer.sinkUrl).toBe('http://10.0.0.5:18082');
  });

  it('a file that cannot be read is a configuration error naming it', () => {
    expect(() => withConfigFile({}, path.join(dir, 'missing.env'))).toThrow(ConfigError);
    expect(() => withConfigFile({}, path.join(dir, 'missing.env'))).toThrow(/missing\.env \(--config or INGEST_CONFIG\) cannot be read/);
  });

  it('--config is taken out of argv wherever it is', () => {
    expect(takeConfigFlag(['--config', 'a.env', 'status', '--json'])).toEqual({ argv: ['status', '--json'], file: 'a.env' });
    expect(takeConfigFlag(['status', '--config=b.env'])).toEqual({ argv: ['status'], file: 'b.env' });
    expect(takeConfigFlag(['status'])).toEqual({ argv: ['status'], file: undefined });
    expect(() => takeConfigFlag(['status', '--config'])).toThrow(/--config needs a file/);
  });

  it('the running product\'s endpoints fill in under everything else', async () => {
    await writeFile(path.join(dir, ENDPOINTS_FILE), endpointsText({ EDGE_URL: 'http://127.0.0.1:18080', SINK_URL: 'http://127.0.0.1:18082' }));
    const env = withRunningEndpoints({ INGEST_DATA_DIR: dir, SINK_URL: 'http://elsewhere:1' });
    expect(env['EDGE_URL']).toBe('http://127.0.0.1:18080');
    expect(env['SINK_URL']).toBe('http://elsewhere:1');
    expect(withRunningEndpoints({ INGEST_DATA_DIR: path.join(dir, 'none') })).toEqual({ INGEST_DATA_DIR: path.join(dir, 'none') });
  });
});
