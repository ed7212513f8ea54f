import { execFile } from 'node:child_process';
import { connect } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (deploy/local/* scripts are resolved from it, whatever the test's cwd). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** Runs one of the deploy/local scripts and resolves with its stdout; rejects with its stderr. */
export function runLocalScript(
  script: string,
  args: string[],
  env: Record<string, string>,
  timeoutMs: number,
): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      'bash',
      [path.join(REPO_ROOT, script), ...args],
      { cwd: REPO_ROOT, env: { ...process.env, ...env }, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 4 << 20 },
      (err, stdout, stderr) => {
        if (err) {
          const detail = stderr.trim() || stdout.trim() || err.message;
          reject(new Error(`${script} ${args.join(' ')} failed: ${detail}`, { cause: err }));
          return;
        }
        resolve(stdout);
      },
    );
  });
}

/** Sends `probe` (if any) and resolves with whatever arrives first; undefined if nothing listens. */
export function probePort(host: string, port: number, timeoutMs: number, probe?: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    let settled = false;
    const done = (value: string | undefined): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(value);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    timer.unref();
    socket.once('connect', () => {
      if (probe === undefined) done('');
      else socket.write(probe);
    });
    socket.once('data', (chunk: Buffer) => done(chunk.toString('utf8')));
    socket.once('error', () => done(undefined));
    socket.once('close', () => done(undefined));
  });
}

export function portFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const port = Number(raw);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new Error(`${name}=${raw} is not a port`);
  return port;
}
