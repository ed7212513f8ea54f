import { loadConfig } from '@ingest/config';
import { adminListener, startTracing } from '@ingest/observability';
import { runMain, serveUntilSignal } from '@ingest/supervisor';
import { buildSinkWriter } from './app.ts';

runMain(async () => {
  const config = loadConfig();
  // Before the app is built: the app installs its span hooks only if tracing is on by then.
  const tracing = await startTracing({ serviceName: 'sink-writer', ...config.tracing });
  const app = await buildSinkWriter({ logging: config.logging, config: config.sink, backends: config.backends });
  // Metrics and status listen apart from the public port (loopback unless ADMIN_HOST says otherwise).
  await adminListener(app).listen({ host: config.sink.adminHost, port: config.sink.adminPort });
  await serveUntilSignal(app, { host: config.sink.host, port: config.sink.port }, () => tracing.shutdown());
});
