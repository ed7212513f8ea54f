import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseEnv } from 'node:util';
import { ConfigError, type Env } from './env.ts';

/**
 * The environment with the optional config file under it. The file (`--config`, or
 * INGEST_CONFIG) holds the same variables as the environment, one `KEY=value` a line (the dotenv
 * format: `#` comments, quotes), so `pnpm start`, every service and `ingestctl` read one
 * configuration. A variable set in the environment wins over the file, as an override should.
 */
export function withConfigFile(env: Env, file: string | undefined = env['INGEST_CONFIG']): Env {
  if (file === undefined || file === '') return env;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError([`config file ${path.resolve(file)} (--config or INGEST_CONFIG) cannot be read: ${(e as Error).message}`]);
  }
  const fromFile = parseEnv(text) as Record<string, string>;
  const merged: Record<string, string | undefined> = { ...fromFile };
  for (const [k, v] of Object.entries(env)) if (v !== undefined) merged[k] = v;
  // Children started with this environment find the same file again.
  merged['INGEST_CONFIG'] = path.resolve(file);
  return merged;
}

/** Written by `pnpm start` in its data directory while the product runs: where each service listens. */
export const ENDPOINTS_FILE = 'endpoints.env';

/** The lines of ENDPOINTS_FILE for a running product (KEY=value, the config file's format). */
export function endpointsText(urls: Record<string, string>): string {
  return `# written by pnpm start while the product runs; ingestctl reads it under the environment and --config\n${Object.entries(urls).map(([k, v]) => `${k}=${v}`).join('\n')}\n`;
}

/**
 * The environment with, under it, where a product started by `pnpm start` on this machine listens
 * ($INGEST_DATA_DIR/endpoints.env), so ingestctl reaches a product started on other ports without
 * flags. Missing file: the environment as it is (the defaults apply).
 */
export function withRunningEndpoints(env: Env): Env {
  const file = path.join(env['INGEST_DATA_DIR'] ?? '.data', ENDPOINTS_FILE);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return env;
  }
  const merged: Record<string, string | undefined> = { ...(parseEnv(text) as Record<string, string>) };
  for (const [k, v] of Object.entries(env)) if (v !== undefined) merged[k] = v;
  return merged;
}

/**
 * Takes `--config <file>` or `--config=<file>` out of argv (wherever it is), for commands that
 * accept it before their own flags are parsed.
 */
export function takeConfigFlag(argv: readonly string[]): { argv: string[]; file: string | undefined } {
  const out: string[] = [];
  let file: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--') {
      out.push(...argv.slice(i));
      break;
    }
    if (a === '--config') {
      const v = argv[i + 1];
      if (v === undefined || v.startsWith('-')) throw new ConfigError(['--config needs a file: --config ./ingest.env']);
      file = v;
      i++;
    } else if (a.startsWith('--config=')) {
      file = a.slice('--config='.length);
    } else {
      out.push(a);
    }
  }
  return { argv: out, file };
}
