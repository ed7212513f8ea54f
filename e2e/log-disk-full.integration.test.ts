import { execFileSync } from 'node:child_process';
import { mkdtemp, open, rm, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TelemetryStore } from '@ingest/storage';
import { batchOf, postIngest, startInProcessStack, type InProcessStack } from '@ingest/testkit';
import { sharedStore, tenantId } from './helpers.ts';

/**
 * Issue 9, item 10: the sink writer's data directory on a real 4 MiB tmpfs that the test fills up.
 * A real ENOSPC, no fakes: appends are refused with INGEST_ERR_LOG_UNAVAILABLE, /readyz is 503 naming
 * the log, and once space is freed the sink writer is ready again, takes writes, and every entry
 * that got a 2xx is in ClickHouse. Needs root (mount), as the test machines run.
 */
let store: TelemetryStore;
let mnt: string;
let stack: InProcessStack | undefined;
beforeAll(async () => {
  store = await sharedStore();
  mnt = await mkdtemp(path.join(tmpdir(), 'log-disk-full-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mnt]);
});
afterAll(async () => {
  await stack?.close();
  await store.close();
  execFileSync('umount', [mnt]);
  await rmdir(mnt);
});

/** Writes zeros to `file` until the filesystem is full; returns the bytes written. */
async function fillDisk(file: string): Promise<number> {
  const fh = await open(file, 'w');
  const chunk = Buffer.alloc(64 * 1024);
  let written = 0;
  try {
    for (;;) written += (await fh.write(chunk)).bytesWritten;
  } catch (err) {
    if ((err as { code?: string }).code !== 'ENOSPC') throw err;
  } finally {
    await fh.close();
  }
  return written;
}

async function until<T>(what: string, probe: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(v)} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('sink writer on a full disk (embedded log, real tmpfs)', () => {
  it('refuses appends with 503 and is not ready while the disk is full; recovers when space is freed; nothing acked is lost', async () => {
    stack = await startInProcessStack({ dataDir: mnt, store });
    const tenant = tenantId('full');
    const key = await stack.tenant(tenant);
    const readyz = async () => {
      const r = await stack!.sink.inject({ method: 'GET', url: '/readyz' });
      return { status: r.statusCode, body: r.json<{ ready: boolean; checks: Record<string, string> }>() };
    };
    let acked = 0;
    const ok = await postIngest(stack.edgeUrl, key, batchOf(200));
    expect(ok.status).toBe(200);
    acked += ok.body.accepted ?? 0;
    expect((await readyz()).status).toBe(200);

    const filler = path.join(mnt, 'filler');
    expect(await fillDisk(filler)).toBeGreaterThan(0);
    const refused = await postIngest(stack.edgeUrl, key, batchOf(200, 200));
    expect(refused.status).toBe(503);
    expect(refused.body.error?.code).toBe('INGEST_ERR_LOG_UNAVAILABLE');
    const notReady = await readyz();
    expect(notReady.status).toBe(503);
    expect(notReady.body.ready).toBe(false);
    expect(notReady.body.checks['log']).toMatch(/^appends failing: telemetry\.v2\/\d+ refuses appends: append failed: ENOSPC/);
    // Still refused, and still not ready, while the disk stays full.
    expect((await postIngest(stack.edgeUrl, key, batchOf(50, 400))).status).toBe(503);
    expect((await readyz()).status).toBe(503);

    await rm(filler);
    await until('readiness after freeing space', readyz, (r) => r.status === 200);
    const after = await postIngest(stack.edgeUrl, key, batchOf(300, 1000));
    expect(after.status).toBe(200);
    acked += after.body.accepted ?? 0;
    expect(acked).toBe(500);

    await stack.waitLoaded(60_000);
    expect(await stack.rowStats(tenant)).toEqual({ rows: acked, distinctIds: acked, final: acked });
  });
});
