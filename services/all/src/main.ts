import { loadConfig } from '@ingest/config';
import { adminListener, startTracing } from '@ingest/observability';
import { runMain, serveUntilSignal } from '@ingest/supervisor';
import { createRateRedis } from '@ingest/edge';
import { buildAll } from './app.ts';

runMain(async () => {
  const config = loadConfig();
  // Before the apps are built: they install their span hooks only if tracing is on by then.
  const tracing = await startTracing({ serviceName: 'ingest', ...config.tracing });
  const redis = config.backends.redisUrl ? createRateRedis(config.backends.redisUrl, { commandTimeoutMs: config.backends.redisCommandTimeoutMs }) : undefined;
  const roles = await buildAll({ config, logging: config.logging, ...(redis ? { redis } : {}) });
  // The normalizer's and sink writer's own ports still serve their internal and operator routes
  // (ingestctl reaches the sink writer there); admin listeners stay apart from every public port.
  await roles.sink.listen({ host: config.sink.host, port: config.sink.port });
  await roles.normalizer.listen({ host: config.normalizer.host, port: config.normalizer.port });
  await adminListener(roles.sink).listen({ host: config.sink.adminHost, port: config.sink.adminPort });
  await adminListener(roles.normalizer).listen({ host: config.normalizer.adminHost, port: config.normalizer.adminPort });
  await adminListener(roles.edge).listen({ host: config.edge.adminHost, port: config.edge.adminPort });
  await serveUntilSignal(roles.edge, { host: config.edge.host, port: config.edge.port }, async () => {
    await roles.close();
    redis?.disconnect();
    await tracing.shutdown();
  });
});
