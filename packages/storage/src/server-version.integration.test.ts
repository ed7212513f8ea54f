import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, waitUntil } from '@ingest/testkit';
import { TelemetryStore } from './store.ts';
import { MIN_CLICKHOUSE_VERSION, UnsupportedClickHouseVersionError } from './server-version.ts';

// A real old server: Debian bookworm's clickhouse-server is 18.16 (deploy/local/deps.sh installs
// it). It runs on private ports and a private data dir, for this file only.
describe('ClickHouse server version check against a real 18.16 server', () => {
  let dir: string;
  let server: ChildProcess;
  let url: string;
  let output = '';

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'ch18-'));
    const [http, tcp] = [await freePort(), await freePort()];
    url = `http://127.0.0.1:${http}`;
    await writeFile(
      path.join(dir, 'config.xml'),
      `<?xml version="1.0"?><yandex><logger><level>warning</level><console>1</console></logger>` +
        `<listen_host>127.0.0.1</listen_host><http_port>${http}</http_port><tcp_port>${tcp}</tcp_port>` +
        `<path>${dir}/data/</path><tmp_path>${dir}/tmp/</tmp_path><users_config>users.xml</users_config>` +
        `<default_profile>default</default_profile><default_database>default</default_database><mark_cache_size>5368709</mark_cache_size></yandex>`,
    );
    await writeFile(
      path.join(dir, 'users.xml'),
      `<?xml version="1.0"?><yandex><profiles><default/></profiles><quotas><default/></quotas>` +
        `<users><default><password></password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></default></users></yandex>`,
    );
    server = spawn('clickhouse-server', [`--config-file=${path.join(dir, 'config.xml')}`], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (b: Buffer): void => {
      output = (output + b.toString()).slice(-4000);
    };
    server.stdout?.on('data', keep);
    server.stderr?.on('data', keep);
    server.once('error', (e) => keep(Buffer.from(String(e))));
    await waitUntil(
      `clickhouse-server 18.16 on ${url}`,
      async () => {
        if (server.exitCode !== null || output.includes('ENOENT')) throw new Error(`clickhouse-server did not start (run deploy/local/deps.sh): ${output}`);
        try {
          return (await fetch(`${url}/ping`)).ok;
        } catch {
          return false;
        }
      },
      30_000,
      50,
    );
  }, 40_000);

  afterAll(async () => {
    if (server && server.exitCode === null) {
      server.kill('SIGTERM');
      const exited = () => server.exitCode !== null || server.signalCode !== null;
      await waitUntil('the stand-in server to exit', exited, 10_000).catch(() => server.kill('SIGKILL'));
    }
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('refuses to open with one error naming the version found and the one needed', async () => {
    const err = await TelemetryStore.open({ url, database: 'telemetry' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(UnsupportedClickHouseVersionError);
    const e = err as UnsupportedClickHouseVersionError;
    expect(e.found).toMatch(/^18\.16\./);
    expect(e.message).toContain(`version ${e.found}`);
    expect(e.message).toContain(`ClickHouse ${MIN_CLICKHOUSE_VERSION} or newer`);
  });
});
