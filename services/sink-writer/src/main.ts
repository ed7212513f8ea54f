import { loadConfig } from '@ingest/config';
import { runMain, serveUntilSignal } from '@ingest/supervisor';
import { buildSinkWriter } from './app.ts';

runMain(async () => {
  const config = loadConfig();
  const app = await buildSinkWriter({ logging: config.logging, config: config.sink, backends: config.backends });
  await serveUntilSignal(app, { host: config.sink.host, port: config.sink.port });
});
