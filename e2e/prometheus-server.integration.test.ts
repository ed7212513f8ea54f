import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TelemetryStore } from '@ingest/storage';
import { freePort } from '@ingest/supervisor';
import { startInProcessStack, waitUntil, type InProcessStack } from '@ingest/testkit';
import { sharedStore } from './helpers.ts';

/**
 * The remote_write snippet of docs/protocols/remote-write.md, run by a real Prometheus server
 * (Debian's, installed by deploy/local/deps.sh): the documented config is the tested config.
 */
async function documentedRemoteWrite(url: string, apiKey: string): Promise<string> {
  const doc = await readFile(path.join(import.meta.dirname, '..', 'docs', 'protocols', 'remote-write.md'), 'utf8');
  const block = /```yaml\n(remote_write:[\s\S]*?)```/.exec(doc)?.[1];
  if (block === undefined) throw new Error('docs/protocols/remote-write.md has no remote_write yaml block');
  return block.replace('https://ingest.example.com/api/v1/push', url).replace('${INGEST_API_KEY}', apiKey);
}

describe('a real Prometheus server with the documented remote_write config', () => {
  let store: TelemetryStore;
  let stack: InProcessStack;
  let dir: string;
  let prom: ChildProcess | undefined;
  const tenant = `prom-${process.pid}`;

  beforeAll(async () => {
    store = await sharedStore();
    stack = await startInProcessStack({ store, topology: 'single' });
    dir = await mkdtemp(path.join(tmpdir(), 'prometheus-'));
  });
  afterAll(async () => {
    prom?.kill('SIGKILL');
    await stack?.close();
    await store?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("scrapes itself and every sample it remote-writes lands under the key's tenant", async () => {
    const key = await stack.tenant(tenant);
    const port = await freePort();
    // Scrapes itself every second, so samples flow without another exporter.
    const config = `global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: prometheus\n    static_configs:\n      - targets: ['127.0.0.1:${port}']\n${await documentedRemoteWrite(`${stack.edgeUrl}/api/v1/push`, key)}`;
    await writeFile(path.join(dir, 'prometheus.yml'), config);
    prom = spawn('prometheus', [`--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    prom.stderr?.on('data', (b: Buffer) => {
      stderr = (stderr + b.toString()).slice(-4000);
    });
    const count = async (where: string) => {
      const rs = await store.client.query({ query: `SELECT count() AS n FROM telemetry FINAL WHERE tenant_id = {t:String} AND ${where}`, query_params: { t: tenant }, format: 'JSONEachRow' });
      return Number((await rs.json<{ n: string }>())[0]?.n ?? 0);
    };
    // Prometheus batches for up to 5 s (batch_send_deadline) before its first send.
    await waitUntil(`samples of "up" from Prometheus (its stderr: ${stderr.slice(-300)})`, async () => (await count("name = 'up' AND app = 'prometheus'")) >= 2, 90_000, 250);
    expect(await count("type = 'metric' AND name = 'prometheus_build_info'")).toBeGreaterThan(0);
    // Another tenant never sees them.
    const other = await store.client.query({ query: "SELECT count() AS n FROM telemetry WHERE tenant_id != {t:String} AND app = 'prometheus'", query_params: { t: tenant }, format: 'JSONEachRow' });
    expect(Number((await other.json<{ n: string }>())[0]?.n)).toBe(0);
    // Nothing Prometheus sent was refused: its own remote-storage counters say so.
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const failed = /^prometheus_remote_storage_samples_failed_total\{[^}]*\} (\S+)$/m.exec(metrics)?.[1];
    // And nothing was refused on our side either (its NaN samples are skipped and counted, not refused).
    const discarded = async (url: string) => (await (await fetch(`${url}/metrics`)).text()).split('\n').filter((l) => l.startsWith('ingest_discarded_entries_total'));
    expect({ failed: Number(failed ?? 0), edge: await discarded(stack.edgeAdminUrl), normalizer: await discarded(stack.normalizerAdminUrl) }).toEqual({ failed: 0, edge: [], normalizer: [] });
  });
});
