import { ConfigError, loadConfig } from '@ingest/config';
import { buildSinkWriter } from './app.ts';

async function main(): Promise<void> {
  const config = loadConfig();
  const app = await buildSinkWriter({ config: config.sink, backends: config.backends });
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    app.log.info({ signal }, 'draining');
    await app.close();
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
  await app.listen({ host: config.sink.host, port: config.sink.port });
}

main().catch((e: unknown) => {
  console.error(e instanceof ConfigError ? e.message : e);
  process.exit(1);
});
