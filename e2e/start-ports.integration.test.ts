import { spawn, type ChildProcess } from 'node:child_process';
import { access, mkdtemp, rm } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '@ingest/ingestctl';
import { waitUntil } from '@ingest/testkit';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

const exists = (f: string) => access(f).then(() => true, () => false);

describe('pnpm start on other ports', () => {
  let child: ChildProcess | undefined;
  let dir = '';
  afterAll(async () => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('ingestctl status finds it with no flags and no URLs (only the data directory), and the hint is gone after a clean stop', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'start-ports-'));
    const [edge, normalizer, sink, edgeAdmin, normalizerAdmin, sinkAdmin] = await Promise.all(Array.from({ length: 6 }, freePort));
    const env = { ...process.env, INGEST_DATA_DIR: dir, EDGE_PORT: String(edge), NORMALIZER_PORT: String(normalizer), SINK_PORT: String(sink), EDGE_ADMIN_PORT: String(edgeAdmin), NORMALIZER_ADMIN_PORT: String(normalizerAdmin), SINK_ADMIN_PORT: String(sinkAdmin) };
    const proc = spawn(process.execPath, ['--import', 'tsx', 'scripts/start-embedded.ts'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    let output = '';
    proc.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    proc.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    const endpoints = path.join(dir, 'endpoints.env');
    await waitUntil("pnpm start to write endpoints.env", async () => (proc.exitCode === null ? exists(endpoints) : Promise.reject(new Error(`pnpm start exited: ${output.slice(-500)}`))), 90_000, 100);

    const out: string[] = [];
    const err: string[] = [];
    const code = await runCli(['status', '--json'], { out: (s) => out.push(s), err: (s) => err.push(s), env: { INGEST_DATA_DIR: dir } });
    expect(code, err.join('\n')).toBe(0);
    const s = JSON.parse(out.join('')) as { services: Array<{ url: string; ready: boolean }> };
    expect(s.services.map((x) => [x.url, x.ready])).toEqual([
      [`http://127.0.0.1:${edge}`, true],
      [`http://127.0.0.1:${normalizer}`, true],
      [`http://127.0.0.1:${sink}`, true],
    ]);

    proc.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(await exists(endpoints)).toBe(false);
    // Stopped: status says which URL and why, not "fetch failed".
    const down: string[] = [];
    expect(await runCli(['status'], { out: (l) => down.push(l), err: () => undefined, env: { EDGE_URL: `http://127.0.0.1:${edge}`, INGEST_DATA_DIR: dir } })).toBe(3);
    expect(down.join('\n')).toContain(`http://127.0.0.1:${edge}/healthz: connection refused`);
  });
});
