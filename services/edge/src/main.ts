import { loadConfig } from '@ingest/config';
import { adminListener, startTracing } from '@ingest/observability';
import { runMain, serveUntilSignal } from '@ingest/supervisor';
import { buildEdge } from './app.ts';
import { createRateRedis } from './rate/redis-client.ts';

runMain(async () => {
  const config = loadConfig();
  // Before the app is built: the app installs its span hooks only if tracing is on by then.
  const tracing = await startTracing({ serviceName: 'edge', ...config.tracing });
  const redis = config.backends.redisUrl ? createRateRedis(config.backends.redisUrl, { commandTimeoutMs: config.backends.redisCommandTimeoutMs }) : undefined;
  const app = await buildEdge({ logging: config.logging, config: config.edge, ...(redis ? { redis } : {}) });
  // Metrics and status listen apart from the public port (loopback unless ADMIN_HOST says otherwise).
  await adminListener(app).listen({ host: config.edge.adminHost, port: config.edge.adminPort });
  await serveUntilSignal(app, { host: config.edge.host, port: config.edge.port }, async () => {
    redis?.disconnect();
    await tracing.shutdown();
  });
});
