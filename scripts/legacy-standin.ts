/**
 * A runnable stand-in for the legacy pipeline, for drills and local cutover practice
 * (runbooks/drills.md, runbooks/cutover.md): takes the same bodies and keys as v2, keeps each
 * entry once, and serves the LEGACY_COUNT_URL contract `ingestctl cutover status` reads.
 *
 *   node --import tsx scripts/legacy-standin.ts        (pnpm legacy-standin)
 *
 * Environment: LEGACY_PORT (9090), TENANTS_FILE (as `pnpm start`: $INGEST_DATA_DIR/tenants.json).
 * Prints LEGACY_URL and LEGACY_COUNT_URL lines to eval; Ctrl-C stops it. Keeps entries in memory only.
 */
import path from 'node:path';
import { startLegacyFixture } from '@ingest/testkit';

const port = Number(process.env['LEGACY_PORT'] ?? 9090);
const tenantsFile = process.env['TENANTS_FILE'] ?? path.join(process.env['INGEST_DATA_DIR'] ?? '.data', 'tenants.json');
const legacy = await startLegacyFixture({ tenantsFile, port });
console.log(`export LEGACY_URL=${legacy.url}\nexport LEGACY_COUNT_URL=${legacy.countUrl}`);
console.error(`legacy stand-in listening on ${legacy.url} (keys from ${tenantsFile}); Ctrl-C stops it`);
let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  void legacy.close().then(() => process.exit(0));
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
