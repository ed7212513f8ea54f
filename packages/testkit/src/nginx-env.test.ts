import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseEnvLines } from './nginx.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

function bash(script: string, env: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('bash', ['-c', script], { cwd: ROOT, env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...env }, timeout: 10_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)));
  });
}

describe('deploy/local/nginx.sh env', () => {
  it('eval "$(nginx.sh env)" exports what runbooks/cutover.md says: a child process (ingestctl) sees every variable', async () => {
    // `env` runs as a child of the shell that evaluated the output: only exported variables reach it.
    const seen = parseEnvLines(await bash('eval "$(bash deploy/local/nginx.sh env)" && env', { NGINX_PORT: '18898', CUTOVER_NGINX_DIR: '/tmp/cut over' }));
    for (const name of ['NGINX_BIN', 'NGINX_PREFIX', 'NGINX_CONF', 'NGINX_ERROR_LOG', 'NGINX_PID', 'NGINX_URL', 'CUTOVER_NGINX_DIR']) expect(seen[name], name).toBeTruthy();
    expect(seen['NGINX_URL']).toBe('http://127.0.0.1:18898');
    expect(seen['NGINX_CONF']).toMatch(/deploy\/local\/\.run\/nginx-18898\/nginx\.conf$/);
    expect(seen['CUTOVER_NGINX_DIR']).toBe('/tmp/cut over');
  });

  it('the test kit reads the same lines back, quoting undone', async () => {
    const vars = parseEnvLines(await bash('bash deploy/local/nginx.sh env', { NGINX_PORT: '18898', CUTOVER_NGINX_DIR: '/tmp/cut over' }));
    expect(vars).toMatchObject({ NGINX_URL: 'http://127.0.0.1:18898', CUTOVER_NGINX_DIR: '/tmp/cut over' });
  });
});
