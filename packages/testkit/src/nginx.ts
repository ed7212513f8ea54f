import { portFromEnv, REPO_ROOT, runLocalScript } from './local-service.ts';

export interface StartNginxOptions {
  /** Default: $NGINX_PORT or 18880 (integration tests keep to 18800–18899). */
  port?: number;
  /** host:port of the v2 edge. */
  edgeUpstream: string;
  /** host:port of the legacy pipeline. */
  legacyUpstream: string;
  /** Where `ingestctl cutover` renders the map; default under the nginx run dir. */
  cutoverDir?: string;
  /** Sent to the edge as x-ingest-lb-secret (the edge's LB_SHARED_SECRET). */
  lbSecret?: string;
}

export interface NginxHandle {
  url: string;
  port: number;
  /** The variables `ingestctl cutover` needs to render for and reload this nginx. */
  env: Record<string, string>;
  cutoverDir: string;
  reload(): Promise<void>;
  /** Idempotent. */
  stop(): Promise<void>;
}

const START_TIMEOUT_MS = 300_000;
const STOP_TIMEOUT_MS = 30_000;

/**
 * The ingest load balancer (Debian's nginx, unprivileged, own prefix) via deploy/local/nginx.sh,
 * rendered from deploy/nginx/ingest.conf.template. If one is already up on the port it is
 * re-rendered for these upstreams and reloaded, and stop() still stops it: a test owns its port.
 */
/** `export NAME=value` lines as `nginx.sh env` prints them (values quoted by bash's printf %q). */
export function parseEnvLines(text: string): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^(?:export\s+)?([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m?.[1] && m[2] !== undefined) vars[m[1]] = m[2].replace(/\\(.)/g, '$1');
  }
  return vars;
}

export async function startNginx(opts: StartNginxOptions): Promise<NginxHandle> {
  const port = opts.port ?? portFromEnv('NGINX_PORT', 18880);
  const env: Record<string, string> = { NGINX_PORT: String(port), EDGE_UPSTREAM: opts.edgeUpstream, LEGACY_UPSTREAM: opts.legacyUpstream };
  if (opts.cutoverDir) env['CUTOVER_NGINX_DIR'] = opts.cutoverDir;
  if (opts.lbSecret) env['LB_SHARED_SECRET'] = opts.lbSecret;
  await runLocalScript('deploy/local/nginx.sh', ['start'], env, START_TIMEOUT_MS);
  const said = await runLocalScript('deploy/local/nginx.sh', ['env'], env, 10_000);
  const vars = parseEnvLines(said);
  const cutoverDir = vars['CUTOVER_NGINX_DIR'] ?? `${REPO_ROOT}deploy/local/.run/nginx-${port}/cutover`;
  let stopping: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    env: vars,
    cutoverDir,
    async reload() {
      await runLocalScript('deploy/local/nginx.sh', ['reload'], env, STOP_TIMEOUT_MS);
    },
    stop() {
      stopping ??= runLocalScript('deploy/local/nginx.sh', ['stop'], env, STOP_TIMEOUT_MS).then(() => undefined);
      return stopping;
    },
  };
}
