/**
 * `pnpm start`: the whole product on one machine, nothing to install. Embedded log and chDB unless
 * KAFKA_BROKERS / CLICKHOUSE_URL / REDIS_URL say otherwise.
 */
import path from 'node:path';
import { addTenantKey, readTenants } from '@ingest/tenants';
import { rm, writeFile } from 'node:fs/promises';
import { ConfigError, ENDPOINTS_FILE, endpointsText, loadConfig, takeConfigFlag } from '@ingest/config';
import { startStack, REPO_ROOT } from '@ingest/supervisor';

async function main(): Promise<void> {
  // `pnpm start --config f`: the services (children, which inherit the environment) and ingestctl read the same file.
  const { file } = takeConfigFlag(process.argv.slice(2));
  if (file !== undefined) process.env['INGEST_CONFIG'] = path.resolve(file);
  const cfg = loadConfig();
  const dataDir = path.resolve(REPO_ROOT, cfg.backends.dataDir);
  const tenantsFile = path.resolve(REPO_ROOT, cfg.edge.tenantsFile);
  const env = { INGEST_DATA_DIR: dataDir, TENANTS_FILE: tenantsFile };

  let demoKey: string | undefined;
  const doc = await readTenants(tenantsFile);
  if (Object.keys(doc.tenants).length === 0) demoKey = (await addTenantKey(tenantsFile, 'demo')).apiKey;

  // A signal during startup is remembered and acted on once the stack is up: handlers installed
  // only afterwards would let an early SIGTERM kill this supervisor and orphan the services.
  let stopRequested = false;
  let stop = (): void => {
    stopRequested = true;
  };
  // `on`, not `once`: Ctrl-C reaches this process twice (the terminal signals the whole process
  // group, and pnpm passes its own SIGINT on), and a second signal with no handler would kill the
  // supervisor mid-drain and orphan the services. One drain, however many signals.
  process.on('SIGINT', () => stop());
  process.on('SIGTERM', () => stop());

  const stack = await startStack({
    env,
    ports: { edge: cfg.edge.port, normalizer: cfg.normalizer.port, sink: cfg.sink.port },
    adminPorts: { edge: cfg.edge.adminPort, normalizer: cfg.normalizer.adminPort, sink: cfg.sink.adminPort },
    logDir: path.join(dataDir, 'logs'),
    topology: cfg.topology,
  });
  // ingestctl finds the product here, whatever ports it was started on; removed on a clean stop.
  const endpoints = path.join(dataDir, ENDPOINTS_FILE);
  await writeFile(
    endpoints,
    endpointsText({
      EDGE_URL: stack.edgeUrl,
      NORMALIZER_URL: stack.normalizer.url,
      SINK_URL: stack.sink.url,
      EDGE_ADMIN_URL: stack.edge.adminUrl,
      NORMALIZER_ADMIN_URL: stack.normalizer.adminUrl,
      SINK_ADMIN_URL: stack.sink.adminUrl,
    }),
  );
  const mode = `${cfg.backends.kafkaBrokers ? 'Kafka' : 'embedded log'} + ${cfg.backends.clickhouseUrl ? 'ClickHouse server' : 'chDB'}`;
  console.log(`
telemetry ingest is up (${mode}; ${cfg.topology === 'single' ? 'one process, pid ' + String(stack.edge.child.pid) : 'three processes'}); data in ${dataDir}, service logs in ${path.join(dataDir, 'logs')}

  edge        ${stack.edgeUrl}/v2/ingest      admin (metrics, status) ${stack.edge.adminUrl}
  normalizer  ${stack.normalizer.url}                admin ${stack.normalizer.adminUrl}
  sink writer ${stack.sink.url}                admin ${stack.sink.adminUrl}
${demoKey ? `\ncreated tenant "demo" with API key (shown once):\n  ${demoKey}\n` : ''}
send:
  curl -sS ${stack.edgeUrl}/v2/ingest -H "authorization: Bearer ${demoKey ?? '<api key>'}" -H 'content-type: application/json' \\
    -d '[{"type":"log","timestamp":'"$(date +%s000)"',"app":"web","data":{"level":"info","message":"hello"}}]'
query:
  pnpm ingestctl query --tenant demo --count
more:
  pnpm ingestctl tenants add <tenant>     pnpm ingestctl status

Ctrl-C drains and stops.`);

  let stopping = false;
  const drain = async () => {
    if (stopping) return;
    stopping = true;
    console.log('\ndraining…');
    await stack.stop();
    await rm(endpoints, { force: true });
    process.exit(0);
  };
  stop = () => void drain();
  if (stopRequested) stop();
  // If a service dies on its own, say so and stop the rest rather than run half a pipeline.
  // In one process the three are views of the same child: say it once.
  for (const s of cfg.topology === 'single' ? [stack.edge] : [stack.edge, stack.normalizer, stack.sink]) {
    void s.exited.then((code) => {
      if (stopping) return;
      const name = cfg.topology === 'single' ? 'ingest' : s.name;
      console.error(`${name} exited (code ${code}); see ${path.join(dataDir, 'logs', `${name}.log`)}`);
      stop();
    });
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof ConfigError ? e.message : e);
  process.exit(1);
});
