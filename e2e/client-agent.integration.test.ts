import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TelemetryStore } from '@ingest/storage';
import { startInProcessStack, type InProcessStack } from '@ingest/testkit';
import { sharedStore, tenantId } from './helpers.ts';

const REPO_ROOT = path.resolve(import.meta.dirname, '..');
// The agent's entry from source, in this process's node with tsx (the compiled bin is exercised by
// e2e/install.integration.test.ts, installed from its tarball).
const MAIN = path.join(REPO_ROOT, 'packages/agent/src/main.ts');
const AGENT_PORT = 18610;
const AGENT = `http://127.0.0.1:${AGENT_PORT}`;

let store: TelemetryStore;
let stack: InProcessStack;
let agent: ChildProcess | undefined;
let agentOut = '';
let walDir: string;
let tenant: string;

beforeAll(async () => {
  store = await sharedStore();
  stack = await startInProcessStack({ store });
  tenant = tenantId('agent');
  const apiKey = await stack.tenant(tenant);
  walDir = await mkdtemp(path.join(tmpdir(), 'agent-wal-'));
  // The real binary, configured by flags and environment as an operator would.
  agent = spawn(process.execPath, ['--import', 'tsx', MAIN, '--endpoint', stack.edgeUrl, '--port', String(AGENT_PORT), '--wal-dir', walDir, '--flush-interval-ms', '50'], {
    cwd: REPO_ROOT,
    env: { ...process.env, INGEST_API_KEY: apiKey, AGENT_LINE_PROTOCOL_APP: 'telegraf' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  agent.stdout?.on('data', (d: Buffer) => (agentOut += d.toString()));
  agent.stderr?.on('data', (d: Buffer) => (agentOut += d.toString()));
  const deadline = Date.now() + 30_000;
  while (!agentOut.includes('listening on')) {
    if (Date.now() > deadline || agent.exitCode !== null) throw new Error(`agent did not start: ${agentOut}`);
    await new Promise((r) => setTimeout(r, 50));
  }
});
afterAll(async () => {
  if (agent && agent.exitCode === null) agent.kill('SIGKILL');
  await stack?.close();
  await store?.close();
  await rm(walDir, { recursive: true, force: true });
});

async function waitDelivered(): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const s = (await (await fetch(`${AGENT}/stats`)).json()) as { backlog: number; failedTotal: number };
    if (s.backlog === 0) break;
    if (Date.now() > deadline) throw new Error(`agent backlog still ${s.backlog}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  await stack.waitLoaded();
}

interface MetricRow {
  name: string;
  value: number;
  labels: Record<string, string>;
  ts: string;
  app: string;
  source: string;
}

describe('ingest-agent (the bin) in front of the real edge', () => {
  it('Telegraf-style line protocol lands as metric entries with the right names, values, tags and timestamps', async () => {
    const nowS = Math.floor(Date.now() / 1000) - 60;
    const nowNs = `${nowS + 1}123456789`;
    // What Telegraf's outputs.http (data_format = "influx", content_encoding = "gzip") sends.
    const body = [
      `cpu,cpu=cpu-total,host=web\\ 1 usage_idle=97.25,usage_user=1.5 ${nowNs}`,
      `mem,host=web\\ 1 used=8589934592i,available_percent=41.5,swap_ok=true,state="fine" ${nowNs}`,
      `temperature,sensor=cpu\\,0 value=61.5 ${nowNs}`,
    ].join('\n');
    const r = await fetch(`${AGENT}/write?db=telegraf&precision=ns`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain; charset=utf-8', 'content-encoding': 'gzip', 'user-agent': 'Telegraf/1.30.0' },
      body: gzipSync(body),
    });
    expect(r.status).toBe(204);
    // outputs.influxdb_v2 path, second precision.
    const r2 = await fetch(`${AGENT}/api/v2/write?org=o&bucket=b&precision=s`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: `disk,path=/var free=1024u ${nowS}` });
    expect(r2.status).toBe(204);
    // A resend of the same points (Telegraf retrying after a timeout) adds nothing at rest.
    expect((await fetch(`${AGENT}/write?precision=ns`, { method: 'POST', headers: { 'content-encoding': 'gzip' }, body: gzipSync(body) })).status).toBe(204);

    await waitDelivered();
    const rs = await store.client.query({
      query: `SELECT name, value, labels, toString(toUnixTimestamp64Milli(ts)) AS ts, app, source FROM telemetry FINAL WHERE tenant_id = {t:String} AND type = 'metric' ORDER BY name`,
      query_params: { t: tenant },
      format: 'JSONEachRow',
    });
    const rows = await rs.json<MetricRow>();
    const nsMs = String((nowS + 1) * 1000 + 123);
    expect(rows.map((x) => [x.name, x.value, x.labels, x.ts])).toEqual([
      ['cpu.usage_idle', 97.25, { cpu: 'cpu-total', host: 'web 1' }, nsMs],
      ['cpu.usage_user', 1.5, { cpu: 'cpu-total', host: 'web 1' }, nsMs],
      ['disk.free', 1024, { path: '/var' }, String(nowS * 1000)],
      ['mem.available_percent', 41.5, { host: 'web 1' }, nsMs],
      ['mem.swap_ok', 1, { host: 'web 1' }, nsMs],
      ['mem.used', 8589934592, { host: 'web 1' }, nsMs],
      ['temperature', 61.5, { sensor: 'cpu,0' }, nsMs],
    ]);
    expect(new Set(rows.map((x) => x.app))).toEqual(new Set(['telegraf']));
    expect(new Set(rows.map((x) => x.source))).toEqual(new Set(['line-protocol']));
  });

  it('takes the edge contract on /v2/ingest (NDJSON here) and forwards it with its own key', async () => {
    const ts = Date.now();
    const nd = [
      { id: 'agent-log-1', type: 'log', timestamp: ts, app: 'local', data: { level: 'warn', message: 'via agent' } },
      { id: 'agent-health-1', type: 'health', timestamp: ts, app: 'local', data: { status: 'ok', check: 'db' } },
    ]
      .map((e) => JSON.stringify(e))
      .join('\n');
    const r = await fetch(`${AGENT}/v2/ingest`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: nd });
    expect(await r.json()).toEqual({ accepted: 2, rejected: [] });
    await waitDelivered();
    const rs = await store.client.query({
      query: `SELECT id, type, level FROM telemetry FINAL WHERE tenant_id = {t:String} AND startsWith(id, 'agent-') ORDER BY id`,
      query_params: { t: tenant },
      format: 'JSONEachRow',
    });
    expect(await rs.json()).toEqual([
      { id: 'agent-health-1', type: 'health', level: 'ok' },
      { id: 'agent-log-1', type: 'log', level: 'warn' },
    ]);
  });

  it('refuses string-only lines and out-of-window timestamps itself (400 naming the line), and forwards the rest, which the edge takes', async () => {
    const nowS = Math.floor(Date.now() / 1000) - 30;
    const body = [`refusal_ok value=1 ${nowS}`, `refusal_status state="up" ${nowS}`, `refusal_old value=2 ${nowS - 8 * 24 * 3600}`].join('\n');
    const r = await fetch(`${AGENT}/write?db=telegraf&precision=s`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body });
    expect(r.status).toBe(400);
    const answer = (await r.json()) as { code: string; message: string; line: number };
    expect(answer).toMatchObject({ code: 'invalid', line: 2 });
    expect(answer.message).toMatch(/^INGEST_ERR_PARTIAL_WRITE: 1 points stored, 2 refused: line 2: INGEST_ERR_ENTRY_VALUE: .*line 3: INGEST_ERR_ENTRY_TIMESTAMP: /);
    await waitDelivered();
    const rs = await store.client.query({
      query: `SELECT name FROM telemetry FINAL WHERE tenant_id = {t:String} AND type = 'metric' AND startsWith(name, 'refusal') ORDER BY name`,
      query_params: { t: tenant },
      format: 'JSONEachRow',
    });
    expect(await rs.json()).toEqual([{ name: 'refusal_ok' }]);
    // Nothing the agent forwarded was refused by the edge later: the producer heard every refusal.
    const stats = (await (await fetch(`${AGENT}/stats`)).json()) as { failedTotal: number; refused: Record<string, number> };
    expect(stats).toMatchObject({ failedTotal: 0, refused: { INGEST_ERR_ENTRY_VALUE: 1, INGEST_ERR_ENTRY_TIMESTAMP: 1 } });
  });

  it('drains and exits 0 on SIGTERM', async () => {
    const exited = new Promise<number | null>((resolve) => agent!.once('exit', (code) => resolve(code)));
    agent!.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(agentOut).toMatch(/stopped \(exported \d+, backlog 0/);
  });
});
