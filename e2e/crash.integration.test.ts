import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addTenantKey } from '@ingest/tenants';
import { freePort, startService, startStack, type Stack } from '@ingest/supervisor';
import { batchOf, postIngest, waitLoaded, waitUntil } from '@ingest/testkit';
import { MODES, modeEnv, tenantId, type ModeEnv } from './helpers.ts';

/**
 * Four producers that retry each batch of 250 with the same ids until it gets a 2xx, as the SDK
 * does, and keep sending fresh batches until stopped, so load runs before, during and after a crash.
 */
function producers(edgeUrl: string, apiKey: string) {
  const state = { acked: 0, failures: 0, next: 0, stopped: false };
  const producer = async () => {
    while (!state.stopped) {
      const b = batchOf(250, state.next++ * 250);
      for (let attempt = 0; attempt < 600; attempt++) {
        const r = await postIngest(edgeUrl, apiKey, b).catch(() => undefined);
        if (r?.status === 200) {
          state.acked += r.body.accepted ?? 0;
          break;
        }
        state.failures++;
        await new Promise((res) => setTimeout(res, 100));
      }
    }
  };
  const running = Promise.all([0, 1, 2, 3].map(() => producer()));
  return {
    get acked() {
      return state.acked;
    },
    async stop() {
      state.stopped = true;
      await running;
      return { acked: state.acked, failures: state.failures, next: state.next };
    },
  };
}

const CASES = MODES.flatMap((mode) => (['SIGKILL', 'SIGTERM'] as const).map((signal) => ({ mode, signal })));

describe.each(CASES)('sink writer stopped by $signal under load ($mode log)', ({ mode, signal }) => {
  let m: ModeEnv;
  let stack: Stack | undefined;
  beforeAll(async () => {
    m = await modeEnv(mode);
  });
  afterAll(async () => {
    await stack?.stop();
    await m?.stop();
  });

  it('after restart every entry that got a 2xx is in ClickHouse, zero duplicates', async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), `crash-${mode}-`));
    const tenant = tenantId('crash');
    const { apiKey } = await addTenantKey(path.join(dataDir, 'tenants.json'), tenant);
    const env = { ...m.env, INGEST_DATA_DIR: dataDir, LOG_LEVEL: 'warn' };
    const ports = { edge: await freePort(), normalizer: await freePort(), sink: await freePort() };
    stack = await startStack({ env, ports, logDir: path.join(dataDir, 'logs') });
    const edgeUrl = stack.edgeUrl;

    const load = producers(edgeUrl, apiKey);
    // Throws at the bound, so a stalled pipeline fails here, naming what it waited for.
    const until = (cond: () => boolean) => waitUntil('acknowledged entries', cond, 120_000, 10);
    await until(() => load.acked >= 2500);
    // SIGKILL: nothing gets to finish. SIGTERM: the sink drains (in-flight appends complete, the
    // loader commits) before exiting; either way no acknowledged entry may be missing.
    if (signal === 'SIGKILL') await stack.sink.kill9();
    else await stack.sink.stop();
    const ackedAtKill = load.acked;
    stack.sink = await startService('sink-writer', { env, port: ports.sink, logFile: path.join(dataDir, 'logs', 'sink-writer.restarted.log') });
    await until(() => load.acked >= ackedAtKill + 5000);
    const { acked, failures, next } = await load.stop();

    console.log(JSON.stringify({ mode, signal, acked, ackedAtKill, failures, next }));
    expect(failures).toBeGreaterThan(0); // the crash was felt by the producers
    // Every batch sent was eventually acknowledged, so the ids sent are exactly the ids acked.
    expect(acked).toBe(next * 250);
    await waitLoaded(stack.sink.url, 120_000);
    const stats = (await (await fetch(`${stack.sink.url}/admin/v1/row-stats?tenant=${tenant}`)).json()) as { final: number; distinctIds: number };
    expect(stats.distinctIds).toBe(acked);
    expect(stats.final).toBe(acked);
  });
});

// The default topology: every role in one process, so a kill -9 takes edge, normalizer, sink
// writer and loader down at once, mid-request and mid-insert.
describe.each(MODES)('the one process killed -9 under load (%s log)', (mode) => {
  let m: ModeEnv;
  let stack: Stack | undefined;
  beforeAll(async () => {
    m = await modeEnv(mode);
  });
  afterAll(async () => {
    await stack?.stop();
    await m?.stop();
  });

  it('after restart every entry that got a 2xx is in ClickHouse, zero duplicates', async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), `crash-single-${mode}-`));
    const tenant = tenantId('crash1');
    const { apiKey } = await addTenantKey(path.join(dataDir, 'tenants.json'), tenant);
    const env = { ...m.env, INGEST_DATA_DIR: dataDir, LOG_LEVEL: 'warn' };
    const ports = { edge: await freePort(), normalizer: await freePort(), sink: await freePort() };
    const adminPorts = { edge: await freePort(), normalizer: await freePort(), sink: await freePort() };
    const start = () => startStack({ env, ports, adminPorts, logDir: path.join(dataDir, 'logs'), topology: 'single' });
    stack = await start();
    const edgeUrl = stack.edgeUrl;

    const load = producers(edgeUrl, apiKey);
    const until = (cond: () => boolean) => waitUntil('acknowledged entries', cond, 120_000, 10);
    await until(() => load.acked >= 2500);
    await stack.edge.kill9();
    const ackedAtKill = load.acked;
    stack = await start();
    await until(() => load.acked >= ackedAtKill + 5000);
    const { acked, failures, next } = await load.stop();

    console.log(JSON.stringify({ mode, topology: 'single', acked, ackedAtKill, failures, next }));
    expect(failures).toBeGreaterThan(0);
    expect(acked).toBe(next * 250);
    await waitLoaded(stack.sink.url, 120_000);
    const stats = (await (await fetch(`${stack.sink.url}/admin/v1/row-stats?tenant=${tenant}`)).json()) as { final: number; distinctIds: number };
    expect(stats.distinctIds).toBe(acked);
    expect(stats.final).toBe(acked);
  });
});
