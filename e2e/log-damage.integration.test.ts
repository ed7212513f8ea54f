import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TelemetryStore } from '@ingest/storage';
import { adminListener } from '@ingest/observability';
import { logEntry, postIngest, startInProcessStack, type InProcessStack } from '@ingest/testkit';
import { sharedStore, tenantId } from './helpers.ts';

/**
 * Issue 9, item 6: one byte flipped in the middle of an embedded-log segment, with acknowledged
 * records after it, costs exactly that record. Real sink writer, real log, real chDB; the damage is
 * made on disk between two runs of the stack, like bit rot under a stopped service.
 */
let store: TelemetryStore;
const stacks: InProcessStack[] = [];
let dataDir: string;
beforeAll(async () => {
  store = await sharedStore();
  dataDir = await mkdtemp(path.join(tmpdir(), 'log-damage-'));
});
afterAll(async () => {
  for (const s of stacks) await s.close();
  await store.close();
  await rm(dataDir, { recursive: true, force: true });
});

/** Start of every record in a segment and its end, walking the length fields (format.ts). */
function recordPositions(bytes: Buffer): number[] {
  const out = [0];
  for (let p = 0; p < bytes.length; ) out.push((p += 8 + bytes.readUInt32BE(p)));
  return out;
}

describe('a damaged record in the embedded log (sink writer + loader + chDB)', () => {
  it('after a restart every entry of every other record is loaded exactly once; the damaged one is quarantined and counted', async () => {
    const TOTAL = 3000;
    const tenant = tenantId('damage');
    const base = Date.now() - 60_000;
    // Every entry gets its own millisecond, so a count from a timestamp on tells which entries landed.
    const entries = Array.from({ length: TOTAL }, (_, i) => logEntry(i, { timestamp: base + i }));

    // Run 1: take the writes, load nothing, so every record is still to be delivered after the damage.
    const first = await startInProcessStack({ dataDir, store, env: { LOADER_ENABLED: 'false' } });
    stacks.push(first);
    const key = await first.tenant(tenant);
    for (let i = 0; i < TOTAL; i += 250) {
      const r = await postIngest(first.edgeUrl, key, entries.slice(i, i + 250));
      expect(r.status, JSON.stringify(r.body)).toBe(200);
    }
    await first.close();

    // One byte flipped in the middle of the tenant's segment.
    const topicDir = path.join(dataDir, 'log', 'topics', 'telemetry.v2');
    let segment = '';
    for (const p of await readdir(topicDir)) {
      if (p === 'topic.json') continue;
      const f = path.join(topicDir, p, `${'0'.repeat(20)}.log`);
      if ((await stat(f)).size > 0) segment = f;
    }
    const bytes = await readFile(segment);
    const at = recordPositions(bytes);
    expect(at.length - 1).toBe(TOTAL); // one record per entry, all in this partition
    const middle = Math.floor(bytes.length / 2);
    const bad = at.findIndex((p, i) => p <= middle && middle < at[i + 1]!);
    expect(bad).toBeGreaterThan(0);
    expect(bad).toBeLessThan(TOTAL - 1);
    bytes[middle]! ^= 0x5a;
    await writeFile(segment, bytes);
    const badEntry = entries.find((e) => bytes.subarray(at[bad], at[bad + 1]).includes(String(e['id'])))!;
    expect(badEntry).toBeDefined();
    const badTs = badEntry['timestamp'] as number;

    // Run 2: recovery finds the damage, the loader delivers everything else.
    const second = await startInProcessStack({ dataDir, store });
    stacks.push(second);
    await second.waitLoaded(120_000);
    const stats = await second.rowStats(tenant);
    expect(stats).toEqual({ rows: TOTAL - 1, distinctIds: TOTAL - 1, final: TOTAL - 1 });
    // Exactly the damaged record's entry is missing: one timestamp per entry.
    expect((await store.count({ tenant, sinceMs: badTs })) - (await store.count({ tenant, sinceMs: badTs + 1 }))).toBe(0);
    expect((await store.count({ tenant, sinceMs: badTs - 1 })) - (await store.count({ tenant, sinceMs: badTs }))).toBe(1);
    expect(await store.count({ tenant, sinceMs: badTs + 1 })).toBe(base + TOTAL - 1 - badTs); // everything after it arrived

    // Quarantined, counted in the metric and in /status (what ingestctl status prints).
    const quarantine = await readdir(path.join(path.dirname(segment), 'quarantine'));
    expect(quarantine).toEqual([`${'0'.repeat(20)}.log.at-${at[bad]}.offsets-${bad}-${bad}.bad`]);
    expect(await readFile(path.join(path.dirname(segment), 'quarantine', quarantine[0]!))).toEqual(bytes.subarray(at[bad], at[bad + 1]));
    const metrics = (await adminListener(second.sink).inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toMatch(/^ingest_log_corrupt_records_total{service="sink-writer"} 1$/m);
    expect(metrics).toMatch(/^ingest_log_torn_tail_total{service="sink-writer"} 0$/m);
    const status = (await adminListener(second.sink).inject({ method: 'GET', url: '/status' })).json<Record<string, unknown>>();
    expect(status['logCorruptRecords']).toBe(1);
    // The damaged offset is not reused: new writes land after the last old record.
    const more = await postIngest(second.edgeUrl, key, [logEntry(0, { timestamp: base + TOTAL })]);
    expect(more.status).toBe(200);
    await second.waitLoaded(60_000);
    expect((await second.rowStats(tenant)).final).toBe(TOTAL);
  });
});
