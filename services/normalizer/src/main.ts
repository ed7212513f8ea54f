import { loadConfig } from '@ingest/config';
import { adminListener, startTracing } from '@ingest/observability';
import { runMain, serveUntilSignal } from '@ingest/supervisor';
import { buildNormalizer } from './app.ts';

runMain(async () => {
  const config = loadConfig();
  // Before the app is built: the app installs its span hooks only if tracing is on by then.
  const tracing = await startTracing({ serviceName: 'normalizer', ...config.tracing });
  const app = await buildNormalizer({ logging: config.logging, config: config.normalizer });
  // Metrics and status listen apart from the public port (loopback unless ADMIN_HOST says otherwise).
  await adminListener(app).listen({ host: config.normalizer.adminHost, port: config.normalizer.adminPort });
  await serveUntilSignal(app, { host: config.normalizer.host, port: config.normalizer.port }, () => tracing.shutdown());
});
