import { loadConfig } from '@ingest/config';
import { runMain, serveUntilSignal } from '@ingest/supervisor';
import { buildNormalizer } from './app.ts';

runMain(async () => {
  const config = loadConfig();
  const app = await buildNormalizer({ logging: config.logging, config: config.normalizer });
  await serveUntilSignal(app, { host: config.normalizer.host, port: config.normalizer.port });
});
