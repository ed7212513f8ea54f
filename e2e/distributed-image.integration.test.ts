import { execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, waitUntil } from '@ingest/testkit';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '..');

/** Runs a compiled service with plain node until it exits or the bound; its output and exit code. */
function runService(cwd: string, main: string, env: Record<string, string>, untilMs: number, probe?: () => Promise<boolean>): Promise<{ code: number | null; output: string; probed: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [main], { cwd, env: { PATH: process.env['PATH'] ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let probed = false;
    child.stdout.on('data', (b: Buffer) => (output = (output + b.toString()).slice(-8000)));
    child.stderr.on('data', (b: Buffer) => (output = (output + b.toString()).slice(-8000)));
    child.once('error', reject);
    const kill = setTimeout(() => child.kill('SIGKILL'), untilMs);
    child.once('exit', (code) => {
      clearTimeout(kill);
      resolve({ code, output, probed });
    });
    if (probe) {
      void waitUntil(`${main} to answer`, probe, untilMs - 2000, 100).then(
        () => {
          probed = true;
          child.kill('SIGTERM');
        },
        () => child.kill('SIGTERM'),
      );
    }
  });
}

// What deploy/k8s/Dockerfile does, without Docker: build-dist.sh in a copy of the repository, then
// the services run from the result with plain node (no tsx, no TypeScript, no chDB).
describe('the distributed image build (deploy/k8s/build-dist.sh)', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'dist-image-'));
    await run('bash', ['-c', `tar -C "${ROOT}" --exclude=./.git --exclude=node_modules --exclude=./build --exclude=./.data --exclude=./deploy/local/.cache --exclude=./deploy/local/.run -cf - . | tar -C "${dir}" -xf -`]);
    // Offline from the pnpm store this checkout was installed from, as `pnpm fetch` fills it in the image.
    await run('pnpm', ['install', '--frozen-lockfile', '--offline', '--ignore-scripts'], { cwd: dir, env: { ...process.env, CI: 'true' }, maxBuffer: 16 * 1024 * 1024 });
    await run('bash', ['deploy/k8s/build-dist.sh'], { cwd: dir, maxBuffer: 16 * 1024 * 1024 });
  }, 300_000);

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('leaves JavaScript only, production dependencies only, and no chDB', () => {
    const ts = (sub: string): string[] => readdirSync(path.join(dir, sub), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'));
    for (const s of ['services/edge/src', 'services/normalizer/src', 'services/sink-writer/src', 'packages/storage/src']) expect(ts(s), s).toEqual([]);
    expect(existsSync(path.join(dir, 'services/edge/src/main.js'))).toBe(true);
    const store = readdirSync(path.join(dir, 'node_modules/.pnpm'));
    expect(store.filter((d) => /^(@chdb\+|chdb@)/.test(d))).toEqual([]);
    expect(store.filter((d) => /^(tsx|typescript|vitest)@/.test(d))).toEqual([]);
  });

  it('the edge starts with plain node, answers /healthz and drains on SIGTERM', async () => {
    const [port, admin] = [await freePort(), await freePort()];
    const r = await runService(dir, 'services/edge/src/main.js', { INGEST_DATA_DIR: path.join(dir, '.data'), EDGE_PORT: String(port), EDGE_ADMIN_PORT: String(admin) }, 30_000, async () => {
      try {
        return (await fetch(`http://127.0.0.1:${port}/healthz`)).ok;
      } catch {
        return false;
      }
    });
    expect(r.probed, r.output).toBe(true);
    expect(r.code, r.output).toBe(0);
  });

  it('a sink writer without CLICKHOUSE_URL stops at start and says to set it', async () => {
    const [port, admin] = [await freePort(), await freePort()];
    const r = await runService(dir, 'services/sink-writer/src/main.js', { INGEST_DATA_DIR: path.join(dir, '.data'), SINK_PORT: String(port), SINK_ADMIN_PORT: String(admin) }, 30_000);
    expect(r.code).not.toBe(0);
    expect(r.output).toContain('CLICKHOUSE_URL is not set and this build has no chDB');
  });
});
