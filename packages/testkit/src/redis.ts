import { portFromEnv, probePort, runLocalScript } from './local-service.ts';

export interface StartRedisOptions {
  /** Default: $REDIS_PORT or 16379. */
  port?: number;
}

export interface RedisHandle {
  url: string;
  /** True when a Redis was already answering on the port; stop() then leaves it running. */
  reused: boolean;
  stop(): Promise<void>;
}

const HOST = '127.0.0.1';
// The first start may apt-get install redis-server.
const START_TIMEOUT_MS = 300_000;
const STOP_TIMEOUT_MS = 30_000;

/** A real Redis for integration tests, via deploy/local/redis.sh. */
export async function startRedis(opts: StartRedisOptions = {}): Promise<RedisHandle> {
  const port = opts.port ?? portFromEnv('REDIS_PORT', 16379);
  const url = `redis://${HOST}:${port}`;
  const reply = await probePort(HOST, port, 1_000, 'PING\r\n');
  if (reply?.startsWith('+PONG')) {
    return { url, reused: true, stop: () => Promise.resolve() };
  }
  const env = { REDIS_PORT: String(port) };
  const said = await runLocalScript('deploy/local/redis.sh', ['start'], env, START_TIMEOUT_MS);
  // Another test process started it between our probe and the script (which serializes starts):
  // that process owns it and stops it.
  if (said.includes('already up')) return { url, reused: true, stop: () => Promise.resolve() };
  let stopping: Promise<void> | undefined;
  return {
    url,
    reused: false,
    stop() {
      stopping ??= runLocalScript('deploy/local/redis.sh', ['stop'], env, STOP_TIMEOUT_MS).then(() => undefined);
      return stopping;
    },
  };
}
