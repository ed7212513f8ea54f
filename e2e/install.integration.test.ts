/**
 * The shipped packages installed as a stranger would: `pnpm release:pack` builds the tarballs,
 * `npm` installs them into a project outside the workspace (third-party dependencies from the npm
 * registry, nothing from this repository), and plain `node` runs them — no tsx, no workspace
 * resolution. The entries must land in a running product (real processes, embedded log, chDB).
 *
 * INSTALL_TEST_NODES (colon-separated paths to other node binaries, e.g. a Node 22) runs the
 * producer scripts under each of them too.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENTRY_TYPES } from '@ingest/contracts';
import { freePort, startStack, type Stack } from '@ingest/supervisor';
import { addTenantKey } from '@ingest/tenants';
import { waitLoaded, waitUntil } from '@ingest/testkit';
import { kib, packAll, REPO_ROOT, type Packed } from '../scripts/release.ts';
import { tenantId } from './helpers.ts';

const run = promisify(execFile);
const NPM_TIMEOUT_MS = 180_000;

let work: string;
let stack: Stack | undefined;
let packed: Packed[];
let sdkTenant: string;
let sdkKey: string;
let agentTenant: string;
let agentKey: string;

/** The environment of a shell outside this repo: no pnpm-injected npm_* settings, no tsx loader. */
function strangerEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('npm_') || k === 'NODE_OPTIONS' || k.startsWith('VITEST') || k === 'TSX_TSCONFIG_PATH') continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

async function npm(args: string[], cwd: string): Promise<void> {
  await run('npm', [...args, '--no-audit', '--no-fund', '--loglevel=error'], { cwd, env: strangerEnv(), timeout: NPM_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 });
}

/** Bytes of every file under `dir`. */
async function duBytes(dir: string): Promise<number> {
  let n = 0;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) n += (await stat(path.join(e.parentPath, e.name))).size;
  }
  return n;
}

async function countAtRest(tenant: string, type: string): Promise<number> {
  const r = await fetch(`${stack!.sink.url}/admin/v1/count?tenant=${tenant}&type=${type}`);
  return ((await r.json()) as { count: number }).count;
}

function tarball(name: string): Packed {
  const p = packed.find((x) => x.name === name);
  if (!p) throw new Error(`${name} was not packed`);
  return p;
}

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'stranger-'));
  packed = await packAll(path.join(work, 'release'));
  const dataDir = path.join(work, 'product');
  await mkdir(dataDir);
  sdkTenant = tenantId('sdk');
  agentTenant = tenantId('agent');
  sdkKey = (await addTenantKey(path.join(dataDir, 'tenants.json'), sdkTenant)).apiKey;
  agentKey = (await addTenantKey(path.join(dataDir, 'tenants.json'), agentTenant)).apiKey;
  const ports = { edge: await freePort(), normalizer: await freePort(), sink: await freePort() };
  stack = await startStack({ env: { INGEST_DATA_DIR: dataDir, LOG_LEVEL: 'warn' }, ports, logDir: path.join(dataDir, 'logs') });
});

afterAll(async () => {
  await stack?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

// What a producer writes after reading the README: one entry of every type, then close().
const PRODUCER = (load: string) => `${load}
const prefix = process.env.PREFIX;
const client = await IngestClient.open({ walDir: process.env.WAL_DIR, endpoint: process.env.ENDPOINT, apiKey: process.env.API_KEY, app: 'stranger' });
const ids = [
  client.emitLog('stranger', 'info', 'hello from a tarball'),
  client.emitMetric('stranger.latency', 0.25, { route: '/pay' }),
  client.emitHealth('stranger', 'ok', { check: 'db' }),
  client.record({ id: prefix + '-event', type: 'event', app: 'stranger', data: { name: 'installed', attributes: {} } }),
  client.record({ id: prefix + '-alert', type: 'alert', app: 'stranger', data: { name: 'none', severity: 'info', summary: 'just checking' } }),
];
let refused = '';
try { client.record({ type: 'nope', data: {} }); } catch (e) { refused = e instanceof IngestClientError ? e.code : String(e); }
const delivered = await client.drain(60_000);
const stats = client.stats();
await client.close();
process.stdout.write(JSON.stringify({ ids, delivered, refused, exported: stats.exportedTotal, failed: stats.failedTotal, lastError: stats.lastError }) + '\\n');
`;

describe('the shipped tarballs, installed with npm outside the workspace', () => {
  it('ship no source, tests or fixtures, and say what they need', () => {
    for (const p of packed) {
      expect(p.files.filter((f) => /\.test\.|\/src\/|\/testing\/|fixture/.test(f))).toEqual([]);
      expect(p.files).toContain('package/LICENSE');
      expect(p.files).toContain('package/README.md');
    }
    console.log(packed.map((p) => `${path.basename(p.file)}: packed ${kib(p.packedBytes)}, unpacked ${kib(p.unpackedBytes)} (${p.files.length} files)`).join('\n'));
  });

  it('@ingest/client: installs alone, runs on plain node as ESM and CommonJS, and every entry type lands', async () => {
    const app = path.join(work, 'app');
    await mkdir(app);
    await writeFile(path.join(app, 'package.json'), JSON.stringify({ name: 'stranger-app', version: '1.0.0', private: true }));
    await npm(['install', tarball('@ingest/client').file], app);

    // Only what a producer needs came along: no server framework, nothing workspace-only.
    const installed = await readdir(path.join(app, 'node_modules'));
    expect(installed).not.toContain('fastify');
    expect(await readdir(path.join(app, 'node_modules/@ingest'))).toEqual(['client']);
    const manifest = JSON.parse(await readFile(path.join(app, 'node_modules/@ingest/client/package.json'), 'utf8')) as { dependencies: Record<string, string>; private?: boolean };
    expect(Object.keys(manifest.dependencies)).toEqual(['undici']);
    expect(manifest.private).toBeUndefined();
    const installedBytes = await duBytes(path.join(app, 'node_modules'));
    console.log(`@ingest/client installed with its dependencies: ${kib(installedBytes)} in node_modules (${installed.filter((d) => !d.startsWith('.')).join(', ')})`);

    await writeFile(path.join(app, 'send.mjs'), PRODUCER(`import { IngestClient, IngestClientError } from '@ingest/client';`));
    await writeFile(path.join(app, 'send.cjs'), `(async () => {\n${PRODUCER(`const { IngestClient, IngestClientError } = require('@ingest/client');`)}\n})().catch((e) => { console.error(e); process.exit(1); });\n`);
    const nodes = [process.execPath, ...(process.env['INSTALL_TEST_NODES'] ?? '').split(':').filter(Boolean)];
    const runs: string[] = [];
    for (const [i, node] of nodes.entries()) {
      const { stdout: version } = await run(node, ['--version']);
      for (const script of ['send.mjs', 'send.cjs']) {
        const prefix = `n${i}-${script.replace('.', '-')}`;
        const { stdout } = await run(node, [script], {
          cwd: app,
          env: strangerEnv({ WAL_DIR: path.join(work, `wal-${prefix}`), ENDPOINT: stack!.edgeUrl, API_KEY: sdkKey, PREFIX: prefix }),
          timeout: 90_000,
        });
        const out = JSON.parse(stdout) as { ids: string[]; delivered: boolean; refused: string; exported: number; failed: number; lastError: unknown };
        expect(out, `${script} on node ${version.trim()}`).toMatchObject({ delivered: true, refused: 'CLIENT_ERR_INVALID_ENTRY', exported: 5, failed: 0 });
        expect(new Set(out.ids).size).toBe(5);
        runs.push(`${script} on node ${version.trim()}`);
      }
    }
    console.log(`producer scripts run: ${runs.join(', ')}`);

    await waitLoaded(stack!.sink.url, 120_000);
    for (const type of ENTRY_TYPES) expect(await countAtRest(sdkTenant, type), type).toBe(runs.length);

    // The declarations resolve for a TypeScript producer too (ESM and CommonJS), with nothing
    // from the workspace: the types it needs are in the package.
    await writeFile(path.join(app, 'typed.mts'), `import { IngestClient, type EntryInput, type ClientStats } from '@ingest/client';\nconst e: EntryInput = { type: 'metric', data: { name: 'x', value: 1 } };\nexport async function f(): Promise<ClientStats> { const c = await IngestClient.open({ walDir: 'w', endpoint: 'http://h', apiKey: 'k' }); c.record(e); return c.stats(); }\n`);
    await writeFile(path.join(app, 'typed.cts'), `import { IngestClientError, type FullPolicy } from '@ingest/client';\nconst p: FullPolicy = 'block';\nexport const code: string = new IngestClientError('CLIENT_ERR_CONFIG', [p]).code;\n`);
    await writeFile(
      path.join(app, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', strict: true, noEmit: true, skipLibCheck: false, types: ['node'], typeRoots: [path.join(REPO_ROOT, 'node_modules/@types')] }, files: ['typed.mts', 'typed.cts'] }),
    );
    await run(process.execPath, [path.join(REPO_ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: app, timeout: 120_000 }).catch((e: { stdout?: string }) => {
      throw new Error(`tsc on the installed declarations failed:\n${e.stdout ?? String(e)}`);
    });
  });

  it('@ingest/agent: installs globally from its tarball alone, answers --help, and forwards entries as compiled JavaScript', async () => {
    const prefix = path.join(work, 'global');
    await npm(['install', '-g', '--prefix', prefix, tarball('@ingest/agent').file], work);
    const bin = path.join(prefix, 'bin', 'ingest-agent');
    const lib = path.join(prefix, 'lib', 'node_modules', '@ingest', 'agent');
    // Runs as compiled JavaScript: no tsx anywhere in what was installed.
    const deps = await readdir(path.join(lib, 'node_modules'));
    expect(deps).not.toContain('tsx');
    expect(deps).not.toContain('@ingest');
    console.log(`@ingest/agent installed with its dependencies: ${kib(await duBytes(lib))}`);

    const help = await run(bin, ['--help'], { env: strangerEnv(), timeout: 30_000 });
    expect(help.stdout).toContain('--endpoint');
    expect(help.stdout).toContain('INGEST_API_KEY');
    const version = await run(bin, ['--version'], { env: strangerEnv(), timeout: 30_000 });
    expect(version.stdout.trim()).toBe(JSON.parse(await readFile(path.join(lib, 'package.json'), 'utf8')).version);

    const port = await freePort();
    const agent = spawn(bin, ['--endpoint', stack!.edgeUrl, '--port', String(port), '--wal-dir', path.join(work, 'agent-wal'), '--flush-interval-ms', '50'], {
      env: strangerEnv({ INGEST_API_KEY: agentKey }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    agent.stdout.on('data', (d: Buffer) => (out += d.toString()));
    agent.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => agent.once('exit', (code) => resolve(code)));
    try {
      await waitUntil('the installed agent to listen', () => out.includes('listening on') || agent.exitCode !== null, 30_000, 20);
      expect(out).toContain('listening on');
      const ts = Date.now();
      const nd = ENTRY_TYPES.map((type, i) => JSON.stringify({ id: `agent-${type}`, type, timestamp: ts, app: 'stranger', data: i === 1 ? { name: 'm', value: i } : { name: 'n', level: 'info', message: 'm', status: 'ok', severity: 'info', summary: 's' } })).join('\n');
      const r = await fetch(`http://127.0.0.1:${port}/v2/ingest`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: nd });
      expect(await r.json()).toEqual({ accepted: ENTRY_TYPES.length, rejected: [] });
      agent.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(out).toMatch(/stopped \(exported 5, backlog 0/);
    } finally {
      if (agent.exitCode === null) agent.kill('SIGKILL');
    }
    await waitLoaded(stack!.sink.url, 120_000);
    for (const type of ENTRY_TYPES) expect(await countAtRest(agentTenant, type), type).toBe(1);
  });
});
