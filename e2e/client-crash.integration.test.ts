import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TelemetryStore } from '@ingest/storage';
import { startInProcessStack, type InProcessStack } from '@ingest/testkit';
import { IngestClient } from '@ingest/client';
import { sharedStore, tenantId } from './helpers.ts';

const REPO_ROOT = path.resolve(import.meta.dirname, '..');
const CHILD = path.join(REPO_ROOT, 'e2e/client-producer-child.ts');

let store: TelemetryStore;
let stack: InProcessStack;
beforeAll(async () => {
  store = await sharedStore();
  stack = await startInProcessStack({ store });
});
afterAll(async () => {
  await stack?.close();
  await store?.close();
});

async function queryOne<T>(query: string, params: Record<string, unknown>): Promise<T> {
  const rs = await store.client.query({ query, query_params: params, format: 'JSONEachRow' });
  const rows = await rs.json<T>();
  return rows[0] as T;
}

describe('producer SDK: kill -9 after flush()', () => {
  it('a restarted client on the same WAL delivers every flushed entry; no duplicates at rest', async () => {
    const tenant = tenantId('sdk-crash');
    const apiKey = await stack.tenant(tenant);
    const walDir = await mkdtemp(path.join(tmpdir(), 'sdk-crash-wal-'));
    const FLUSHED = 20_000;

    const child = spawn(process.execPath, ['--import', 'tsx', CHILD], {
      cwd: REPO_ROOT,
      env: { ...process.env, WAL_DIR: walDir, ENDPOINT: stack.edgeUrl, API_KEY: apiKey, FLUSHED: String(FLUSHED) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /FLUSHED .*\n/.exec(out);
        if (m) resolve(m[0].trim());
      });
      void exited.then(() => reject(new Error(`child exited before flushing: ${stderr}`)));
    });
    // flush() returned: kill -9 at once, with delivery of the flushed entries still in progress.
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    const exportedBeforeKill = Number(/exported=(\d+)/.exec(line)?.[1]);

    const client = await IngestClient.open({ walDir, endpoint: stack.edgeUrl, apiKey, maxBatchSize: 1000 });
    try {
      expect(client.stats().corruptTotal).toBe(0);
      expect(await client.drain(120_000)).toBe(true);
      expect(client.stats().failedTotal).toBe(0);
    } finally {
      await client.close();
      await rm(walDir, { recursive: true, force: true });
    }
    await stack.waitLoaded(120_000);

    const flushed = await queryOne<{ n: string }>(`SELECT count() AS n FROM telemetry FINAL WHERE tenant_id = {t:String} AND startsWith(id, 'f-')`, { t: tenant });
    expect(Number(flushed.n)).toBe(FLUSHED);
    const dups = await queryOne<{ n: string }>(
      `SELECT count() AS n FROM (SELECT id FROM telemetry FINAL WHERE tenant_id = {t:String} GROUP BY id HAVING count() > 1)`,
      { t: tenant },
    );
    expect(Number(dups.n)).toBe(0);
    const s = await stack.rowStats(tenant);
    expect(s.final).toBe(s.distinctIds);
    expect(s.distinctIds).toBeGreaterThanOrEqual(FLUSHED);
    // The point of the test: some of what was delivered before the kill was sent again after it.
    expect(exportedBeforeKill).toBeGreaterThan(0);
  });
});
