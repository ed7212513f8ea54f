/**
 * ingest-agent entry point: reads flags and environment, starts the client (WAL recovery first),
 * listens, and drains on SIGTERM/SIGINT. The only file of the package that calls process.exit.
 */
import { readFileSync } from 'node:fs';
import { IngestClient } from '@ingest/client';
import { buildAgent } from './server.ts';
import { helpText, parseAgentConfig } from './config.ts';

async function main(): Promise<number> {
  let cfg;
  try {
    cfg = parseAgentConfig(process.argv.slice(2), process.env);
  } catch (e) {
    process.stderr.write(`ingest-agent: ${(e as Error).message}\n`);
    return 2;
  }
  if (cfg === 'help') {
    process.stdout.write(`${helpText()}\n`);
    return 0;
  }
  if (cfg === 'version') {
    // src/main.ts and the built dist/ingest-agent.js both sit one level below package.json.
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    process.stdout.write(`${pkg.version}\n`);
    return 0;
  }
  const client = new IngestClient({
    ...cfg.client,
    onError: (err) => process.stderr.write(`ingest-agent: ${err.code}: ${err.message}\n`),
  });
  await client.start();
  const app = await buildAgent({ client, token: cfg.token, lineProtocolApp: cfg.lineProtocolApp, bodyLimitBytes: cfg.bodyLimitBytes, maxPastMs: cfg.maxPastMs, maxFutureMs: cfg.maxFutureMs });
  let address: string;
  try {
    address = await app.listen({ host: cfg.host, port: cfg.port });
  } catch (e) {
    process.stderr.write(`ingest-agent: cannot listen on ${cfg.host}:${cfg.port}: ${(e as Error).message}\n`);
    await client.close();
    return 1;
  }
  const s = client.stats();
  process.stdout.write(`ingest-agent listening on ${address} (wal ${cfg.client.walDir}: ${s.backlog} entries pending; forwarding to ${cfg.client.endpoint})\n`);

  await new Promise<void>((resolve) => {
    const stop = (sig: string) => {
      process.stdout.write(`ingest-agent: ${sig}, draining\n`);
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  await app.close();
  await client.close({ drainTimeoutMs: cfg.drainTimeoutMs });
  const end = client.stats();
  process.stdout.write(`ingest-agent: stopped (exported ${end.exportedTotal}, backlog ${end.backlog} kept in the WAL)\n`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`ingest-agent: ${(e as Error)?.stack ?? String(e)}\n`);
    process.exit(1);
  },
);
