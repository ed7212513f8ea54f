import { Redis } from 'ioredis';
import { loadConfig, ConfigError } from '@ingest/config';
import { buildEdge } from './app.ts';

async function main(): Promise<void> {
  const config = loadConfig();
  const redis = config.backends.redisUrl ? new Redis(config.backends.redisUrl, { maxRetriesPerRequest: 1, enableOfflineQueue: false }) : undefined;
  const app = await buildEdge({ config: config.edge, ...(redis ? { redis } : {}) });
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    app.log.info({ signal }, 'draining');
    // close() stops accepting, lets in-flight requests finish (their 2xx still waits on the log).
    await app.close();
    redis?.disconnect();
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
  await app.listen({ host: config.edge.host, port: config.edge.port });
}

main().catch((e: unknown) => {
  if (e instanceof ConfigError) console.error(e.message);
  else console.error(e);
  process.exit(1);
});
