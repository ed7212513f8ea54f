import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { ClickHouseClient } from '@clickhouse/client';

const MIGRATIONS_DIR = fileURLToPath(new URL('../migrations/', import.meta.url));

/**
 * Applies every migration in packages/storage/migrations in name order, once. Applied names are
 * recorded in schema_migrations; each file is written to be idempotent as well, so two replicas
 * starting together can't break each other.
 */
export async function migrate(client: ClickHouseClient): Promise<string[]> {
  await client.command({
    query: `CREATE TABLE IF NOT EXISTS schema_migrations (name String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) ENGINE = ReplacingMergeTree ORDER BY name`,
  });
  const rs = await client.query({ query: 'SELECT name FROM schema_migrations FINAL', format: 'JSONEachRow' });
  const done = new Set((await rs.json<{ name: string }>()).map((r) => r.name));
  const files = (await readdir(MIGRATIONS_DIR)).filter((f) => f.endsWith('.sql')).sort();
  const applied: string[] = [];
  for (const f of files) {
    if (done.has(f)) continue;
    const sql = await readFile(MIGRATIONS_DIR + f, 'utf8');
    await client.command({ query: sql });
    await client.insert({ table: 'schema_migrations', values: [{ name: f }], format: 'JSONEachRow' });
    applied.push(f);
  }
  return applied;
}
