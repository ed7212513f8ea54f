/**
 * Starting and stopping the systems `pnpm bench` compares, each as a child process tree of its own:
 * the product (`scripts/start-embedded.ts`, what `pnpm start` runs) in three configurations, and
 * the bare ceiling server.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { addTenantKey } from '@ingest/tenants';
import { freePort, REPO_ROOT } from '@ingest/supervisor';
import { descendants, readProcTable, type ProcStat } from './proc.ts';

export type SystemName = 'e2e' | 'ack' | 'split' | 'ceiling' | 'ceiling+fsync';
export const SYSTEMS: readonly SystemName[] = ['e2e', 'ack', 'split', 'ceiling', 'ceiling+fsync'];

export const SYSTEM_DESCRIPTIONS: Record<SystemName, string> = {
  e2e: 'product, INGEST_TOPOLOGY=single: acknowledged (fsync always) and loaded into chDB',
  ack: 'product, INGEST_TOPOLOGY=single, LOADER_ENABLED=false: the acknowledged path alone',
  split: 'product, INGEST_TOPOLOGY=split (three service processes): acknowledged and loaded',
  ceiling: 'bare node:http + JSON.parse, nothing else',
  'ceiling+fsync': 'the ceiling plus an append and fsync of each body',
};

export interface RunningSystem {
  name: SystemName;
  /** The process the bench started; its descendants are part of the system. */
  pid: number;
  url: string;
  headers: Record<string, string>;
  /** Where loading can be watched (sink writer's admin routes), when the system loads rows. */
  sink?: { url: string; headers: Record<string, string> };
  /** The child's stdout and stderr, and the supervisor's service logs beside it. */
  logDir: string;
  /** Stops the tree and removes its data, unless asked to keep it for a look. Idempotent. */
  stop(o?: { keepData?: boolean }): Promise<void>;
}

const LIMITS = { entriesPerSecond: 10_000_000, bytesPerSecond: 10 * 1024 ** 3, requestsPerSecond: 100_000 };
const READY_MS = 120_000;

export async function startSystem(name: SystemName): Promise<RunningSystem> {
  return name === 'ceiling' || name === 'ceiling+fsync' ? startCeiling(name) : startProduct(name);
}

async function startProduct(name: 'e2e' | 'ack' | 'split'): Promise<RunningSystem> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), `ingest-bench-${name}-`));
  const tenantsFile = path.join(dataDir, 'tenants.json');
  const { apiKey } = await addTenantKey(tenantsFile, 'bench', LIMITS);
  const [edge, normalizer, sink, edgeAdmin, normalizerAdmin, sinkAdmin] = [await freePort(), await freePort(), await freePort(), await freePort(), await freePort(), await freePort()];
  const env: Record<string, string> = {
    INGEST_DATA_DIR: dataDir,
    TENANTS_FILE: tenantsFile,
    EDGE_PORT: String(edge),
    NORMALIZER_PORT: String(normalizer),
    SINK_PORT: String(sink),
    EDGE_ADMIN_PORT: String(edgeAdmin),
    NORMALIZER_ADMIN_PORT: String(normalizerAdmin),
    SINK_ADMIN_PORT: String(sinkAdmin),
    LOG_FSYNC: 'always',
    LOG_LEVEL: 'warn',
    INGEST_TOPOLOGY: name === 'split' ? 'split' : 'single',
    LOADER_ENABLED: name === 'ack' ? 'false' : 'true',
  };
  const child = spawnLogged(process.execPath, ['--import', 'tsx', path.join('scripts', 'start-embedded.ts')], env, dataDir);
  const token = process.env.INGEST_INTERNAL_TOKEN;
  const adminHeaders: Record<string, string> = token ? { 'x-ingest-internal-token': token } : {};
  const sys: RunningSystem = {
    name,
    pid: child.pid as number,
    url: `http://127.0.0.1:${edge}`,
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
    ...(name === 'ack' ? {} : { sink: { url: `http://127.0.0.1:${sink}`, headers: adminHeaders } }),
    logDir: dataDir,
    stop: once(async (o) => {
      await stopTree(child);
      if (!o?.keepData) await rm(dataDir, { recursive: true, force: true });
    }),
  };
  try {
    await waitReady(child, `${sys.url}/healthz`, name, dataDir);
    if (sys.sink) await waitReady(child, `${sys.sink.url}/healthz`, name, dataDir);
  } catch (e) {
    await stopTree(child);
    throw e;
  }
  return sys;
}

async function startCeiling(name: 'ceiling' | 'ceiling+fsync'): Promise<RunningSystem> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ingest-bench-ceiling-'));
  const port = await freePort();
  const env: Record<string, string> = { PORT: String(port), ...(name === 'ceiling+fsync' ? { CEILING_FSYNC_FILE: path.join(dir, 'bodies.log') } : {}) };
  const child = spawnLogged(process.execPath, [path.join('scripts', 'bench', 'ceiling-server.mjs')], env, dir);
  const sys: RunningSystem = {
    name,
    pid: child.pid as number,
    url: `http://127.0.0.1:${port}`,
    headers: { 'content-type': 'application/json' },
    logDir: dir,
    stop: once(async (o) => {
      await stopTree(child);
      if (!o?.keepData) await rm(dir, { recursive: true, force: true });
    }),
  };
  try {
    await waitReady(child, `${sys.url}/healthz`, name, dir);
  } catch (e) {
    await stopTree(child);
    throw e;
  }
  return sys;
}

function spawnLogged(cmd: string, args: string[], env: Record<string, string>, logDir: string): ChildProcess {
  const fd = openSync(path.join(logDir, 'bench-child.log'), 'a');
  try {
    const child = spawn(cmd, args, { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', fd, fd] });
    if (child.pid === undefined) throw new Error(`could not start ${cmd} ${args.join(' ')}`);
    return child;
  } finally {
    // The child has its own copy of the descriptor.
    closeSync(fd);
  }
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

function logTail(dir: string): string {
  try {
    return readFileSync(path.join(dir, 'bench-child.log'), 'utf8').split('\n').slice(-20).join('\n');
  } catch {
    return '(no output)';
  }
}

async function waitReady(child: ChildProcess, url: string, name: string, dir: string): Promise<void> {
  const deadline = Date.now() + READY_MS;
  while (Date.now() < deadline) {
    if (exited(child)) throw new Error(`${name} exited (code ${child.exitCode ?? child.signalCode}) before ${url} answered; its output:\n${logTail(dir)}`);
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await r.body?.cancel();
      if (r.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${name}: ${url} did not answer 200 within ${READY_MS / 1000} s; its output:\n${logTail(dir)}`);
}

function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (exited(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      child.off('exit', onExit);
      resolve(false);
    }, ms);
    const onExit = () => {
      clearTimeout(t);
      resolve(true);
    };
    child.once('exit', onExit);
  });
}

/** The processes of a tree that are still the same processes (pid not reused) and alive. */
function stillRunning(tree: ProcStat[]): ProcStat[] {
  const now = readProcTable();
  return tree.filter((p) => now.get(p.pid)?.starttime === p.starttime);
}

function signal(pids: ProcStat[], sig: NodeJS.Signals): void {
  for (const p of pids) {
    try {
      process.kill(p.pid, sig);
    } catch {
      // already gone
    }
  }
}

/**
 * SIGTERM to the started process, which drains and stops its own children; bounded, then SIGKILL.
 * Descendants are remembered first: one left behind (its parent died before it could stop it)
 * gets the same treatment by pid, so no bench run leaves services running.
 */
async function stopTree(child: ChildProcess): Promise<void> {
  const table = readProcTable();
  const tree = descendants(table, child.pid as number).map((pid) => table.get(pid) as ProcStat);
  if (!exited(child)) {
    child.kill('SIGTERM');
    if (!(await waitExit(child, 45_000))) child.kill('SIGKILL');
    await waitExit(child, 5_000);
  }
  let left = stillRunning(tree.slice(1));
  if (left.length === 0) return;
  signal(left, 'SIGTERM');
  const deadline = Date.now() + 15_000;
  while (left.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    left = stillRunning(left);
  }
  signal(left, 'SIGKILL');
}

function once<A>(f: (a?: A) => Promise<void>): (a?: A) => Promise<void> {
  let p: Promise<void> | undefined;
  return (a) => (p ??= f(a));
}
