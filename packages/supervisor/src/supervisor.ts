import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SUPERVISED_ENV } from './serve.ts';

/** 'all': every role in one process (services/all). */
export type ServiceName = 'edge' | 'normalizer' | 'sink-writer' | 'all';

/** The repository root, found from this file so callers may run from anywhere. */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

export interface ServiceProcess {
  name: ServiceName;
  child: ChildProcess;
  url: string;
  /** The admin listener (/metrics, /status), on loopback. */
  adminUrl: string;
  /** SIGTERM and wait (drains); SIGKILL after the grace period (default 30 s, above the edge's drain deadline). Idempotent. */
  stop(graceMs?: number): Promise<void>;
  /** kill -9, for crash tests. */
  kill9(): Promise<void>;
  exited: Promise<number | null>;
}

export interface StartOptions {
  env: Record<string, string>;
  port: number;
  /** The admin listener's port; default: a free one, so two stacks on one machine never collide. */
  adminPort?: number;
  /** Where stdout/stderr go; 'inherit' to share the terminal. */
  logFile?: string | 'inherit';
  readyTimeoutMs?: number;
  /** Runs the service under this open-file limit (`ulimit -n`), e.g. to test running out of descriptors. */
  openFileLimit?: number;
}

// The one process of 'all' answers health on the edge's port; its other ports come from the env.
const PORT_ENV: Record<ServiceName, string> = { edge: 'EDGE_PORT', normalizer: 'NORMALIZER_PORT', 'sink-writer': 'SINK_PORT', all: 'EDGE_PORT' };
const ADMIN_PORT_ENV: Record<ServiceName, string> = { edge: 'EDGE_ADMIN_PORT', normalizer: 'NORMALIZER_ADMIN_PORT', 'sink-writer': 'SINK_ADMIN_PORT', all: 'EDGE_ADMIN_PORT' };

export async function startService(name: ServiceName, opts: StartOptions): Promise<ServiceProcess> {
  const main = path.join(REPO_ROOT, 'services', name, 'src', 'main.ts');
  const adminPort = opts.adminPort ?? (await freePort());
  let out: WriteStream | undefined;
  const stdio: 'inherit' | ['ignore', 'pipe', 'pipe'] = opts.logFile === 'inherit' ? 'inherit' : ['ignore', 'pipe', 'pipe'];
  // node itself with tsx loaded in-process: the child *is* the service, so a signal (or kill -9)
  // reaches it, not a wrapper that would leave the service running.
  const nodeArgs = ['--import', 'tsx', main];
  // Through bash only to lower the limit: `exec` replaces bash with node, so the pid is still the service's.
  const [cmd, args] =
    opts.openFileLimit === undefined
      ? [process.execPath, nodeArgs]
      : ['bash', ['-c', `ulimit -n ${Math.floor(opts.openFileLimit)} && exec "$0" "$@"`, process.execPath, ...nodeArgs]];
  const child = spawn(cmd, args, {
    cwd: REPO_ROOT,
    // The supervisor probes the admin listener on loopback, whatever ADMIN_HOST the environment has.
    env: { ...process.env, ...opts.env, [PORT_ENV[name]]: String(opts.port), [ADMIN_PORT_ENV[name]]: String(adminPort), [SUPERVISED_ENV]: '1' },
    stdio,
  });
  if (opts.logFile && opts.logFile !== 'inherit') {
    mkdirSync(path.dirname(opts.logFile), { recursive: true });
    out = createWriteStream(opts.logFile, { flags: 'a' });
    child.stdout?.pipe(out);
    child.stderr?.pipe(out);
  } else if (opts.logFile !== 'inherit') {
    child.stdout?.resume();
    child.stderr?.resume();
  }
  // A service never outlives whoever started it (a test runner that crashed, a Ctrl-C'd bench).
  const reap = () => child.kill('SIGKILL');
  process.once('exit', reap);
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      process.off('exit', reap);
      resolve(code);
    }),
  );
  const url = `http://127.0.0.1:${opts.port}`;
  await waitHealthy(url, opts.readyTimeoutMs ?? 60_000, exited, name, child.pid);

  let stopped: Promise<void> | undefined;
  const stop = (graceMs = 30_000): Promise<void> => {
    stopped ??= (async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(t);
      out?.end();
    })();
    return stopped;
  };
  const kill9 = async () => {
    child.kill('SIGKILL');
    await exited;
    out?.end();
  };
  return { name, child, url, adminUrl: `http://127.0.0.1:${adminPort}`, stop, kill9, exited };
}

function killPid(pid: number | undefined): void {
  if (pid !== undefined) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

async function waitHealthy(url: string, timeoutMs: number, exited: Promise<number | null>, name: string, pid: number | undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let done = false;
  let exitCode: number | null = null;
  void exited.then((c) => {
    done = true;
    exitCode = c;
  });
  while (Date.now() < deadline) {
    if (done) throw new Error(`${name} exited with code ${exitCode} before becoming healthy`);
    try {
      const r = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1000) });
      if (r.ok) {
        const body = (await r.json()) as { pid?: number };
        if (body.pid === pid) return;
        throw new Error(`${name}: port of ${url} is held by another process (pid ${body.pid}); stop it first`);
      }
    } catch (e) {
      if ((e as Error).message.includes('held by another process')) {
        killPid(pid);
        throw e;
      }
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new Error(`${name} was not healthy at ${url} within ${timeoutMs} ms`);
}

export interface Stack {
  edge: ServiceProcess;
  normalizer: ServiceProcess;
  sink: ServiceProcess;
  edgeUrl: string;
  stop(): Promise<void>;
}

export interface StackOptions {
  env: Record<string, string>;
  ports: { edge: number; normalizer: number; sink: number };
  /** Admin listener ports; default: free ones. */
  adminPorts?: { edge: number; normalizer: number; sink: number };
  logDir?: string | 'inherit';
  /** 'split' (default): a process per service. 'single': every role in one process, as `pnpm start` runs. */
  topology?: 'single' | 'split';
}

/**
 * Starts the product. Split: sink writer, normalizer, edge, as three processes (downstream first,
 * so the edge never forwards into nothing). Single: one process; its three entries in the Stack
 * are views of it (each with its own URL and admin URL), and stopping or killing one stops it.
 */
export async function startStack(o: StackOptions): Promise<Stack> {
  const adminPorts = o.adminPorts ?? { edge: await freePort(), normalizer: await freePort(), sink: await freePort() };
  const env = {
    ...o.env,
    EDGE_PORT: String(o.ports.edge),
    NORMALIZER_PORT: String(o.ports.normalizer),
    SINK_PORT: String(o.ports.sink),
    EDGE_ADMIN_PORT: String(adminPorts.edge),
    NORMALIZER_ADMIN_PORT: String(adminPorts.normalizer),
    SINK_ADMIN_PORT: String(adminPorts.sink),
    INGEST_TOPOLOGY: o.topology ?? 'split',
  };
  const log = (n: string) => (o.logDir === 'inherit' ? 'inherit' : o.logDir ? path.join(o.logDir, `${n}.log`) : undefined);
  const opt = (n: string, port: number, adminPort: number): StartOptions => ({ env, port, adminPort, ...(log(n) ? { logFile: log(n) as string } : {}) });
  if (o.topology === 'single') {
    const all = await startService('all', opt('ingest', o.ports.edge, adminPorts.edge));
    const view = (name: ServiceName, port: number, adminPort: number): ServiceProcess => ({ ...all, name, url: `http://127.0.0.1:${port}`, adminUrl: `http://127.0.0.1:${adminPort}` });
    const stack: Stack = {
      edge: view('edge', o.ports.edge, adminPorts.edge),
      normalizer: view('normalizer', o.ports.normalizer, adminPorts.normalizer),
      sink: view('sink-writer', o.ports.sink, adminPorts.sink),
      edgeUrl: all.url,
      stop: () => all.stop(),
    };
    return stack;
  }
  const sink = await startService('sink-writer', opt('sink-writer', o.ports.sink, adminPorts.sink));
  const normalizer = await startService('normalizer', opt('normalizer', o.ports.normalizer, adminPorts.normalizer));
  const edge = await startService('edge', opt('edge', o.ports.edge, adminPorts.edge));
  const stack: Stack = {
    edge,
    normalizer,
    sink,
    edgeUrl: edge.url,
    // Upstream first: the edge stops taking requests, then what is in flight drains downwards.
    // Reads the fields at call time: a test may have replaced a crashed service with a new one.
    stop: async () => {
      await stack.edge.stop();
      await stack.normalizer.stop();
      await stack.sink.stop();
    },
  };
  return stack;
}

/** A port nobody listens on right now (the OS picks it), for tests and benchmarks. */
export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}
