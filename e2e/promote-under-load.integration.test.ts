import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TelemetryStore } from '@ingest/storage';
import { logEntry, postIngest, startInProcessStack, type InProcessStack } from '@ingest/testkit';
import { sharedStore } from './helpers.ts';

const DAY_MS = 86_400_000;
// A promote executes only when no load lands between the sync and the check, so how many rounds
// that takes depends on the machine: the rounds run until five promotes executed or the budget is
// spent, and at least two (repeated promotes of the day) must have executed.
const WANTED_PROMOTES = 5;
const PROMOTE_BUDGET_MS = 100_000;
const BATCH = 25;

/**
 * `shadow promote` checks that live holds nothing the shadow lacks, then swaps the shadow's day in
 * with REPLACE PARTITION. The loader keeps inserting into that day meanwhile: an insert landing
 * between check and REPLACE would be replaced away, with its offsets committed — acknowledged and
 * gone. Real chDB, the real embedded log, all three services in process, ingest never pausing.
 */
describe('shadow promote under concurrent ingest', () => {
  let store: TelemetryStore;
  let stack: InProcessStack;

  beforeAll(async () => {
    store = await sharedStore();
    // A short loader wait: about ten inserts a second, so some fall inside a promote's window
    // (with the old code that lost entries), and some rounds still see none land between the sync
    // and the check (which is when a promote executes). At 2 ms a loaded machine executed none.
    stack = await startInProcessStack({ store, env: { LOADER_MAX_WAIT_MS: '100', SINK_BATCH_MAX_WAIT_MS: '1' } });
  });
  afterAll(async () => {
    await stack.close();
    await store.close();
  });

  it('every acknowledged entry is at rest exactly once after promotes of the day being written (up to five, at least two)', async () => {
    const tenant = 'promote-load';
    const apiKey = await stack.tenant(tenant);
    // Every entry in today's partition and inside the accepted window (never in the future).
    const dayStart = Math.floor(Date.now() / DAY_MS) * DAY_MS;
    const dayIso = new Date(dayStart).toISOString().slice(0, 10);
    const day = Number(dayIso.replaceAll('-', ''));
    let seq = 0;
    let acked = 0;
    let stop = false;
    const failures: string[] = [];
    const ingest = (async () => {
      while (!stop) {
        const batch = Array.from({ length: BATCH }, () => logEntry(seq, { timestamp: dayStart + seq++ }));
        const r = await postIngest(stack.edgeUrl, apiKey, batch);
        if (r.status === 200 && r.body.accepted === BATCH) acked += BATCH;
        else failures.push(`${r.status} ${JSON.stringify(r.body).slice(0, 200)}`);
      }
    })();

    // The operator's repair, compressed: bring the shadow up to live for the day, then promote it.
    const syncShadow = () =>
      store.client.command({
        query: `INSERT INTO telemetry_shadow SELECT * FROM telemetry WHERE toYYYYMMDD(ts) = {day:UInt32}
                AND (tenant_id, type, ts, id) NOT IN (SELECT tenant_id, type, ts, id FROM telemetry_shadow WHERE toYYYYMMDD(ts) = {day:UInt32})`,
        query_params: { day },
      });
    let promoted = 0;
    let refused = 0;
    try {
      // Something of the day has to be loaded before there is anything to promote.
      const deadline = Date.now() + 30_000;
      while ((await store.count({ tenant })) === 0) {
        if (Date.now() > deadline) throw new Error('nothing loaded within 30 s');
        await new Promise((r) => setTimeout(r, 50));
      }
      const budgetEnd = Date.now() + PROMOTE_BUDGET_MS;
      while (promoted < WANTED_PROMOTES && Date.now() < budgetEnd) {
        await syncShadow();
        const r = await fetch(new URL('/admin/v1/shadow/promote', stack.sinkUrl), {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ day: dayIso, yes: true, who: 'promote-under-load' }),
        });
        const body = (await r.json()) as { executed?: boolean };
        if (r.status === 200 && body.executed === true) promoted++;
        // 409: a load landed after the sync, so live held rows the shadow lacked; the check is doing its job.
        else if (r.status === 409) refused++;
        else throw new Error(`promote answered ${r.status}: ${JSON.stringify(body)}`);
      }
    } finally {
      stop = true;
      await ingest;
    }
    console.info(`promote under load: ${promoted} promotes executed, ${refused} refused by the check, ${acked} entries acknowledged meanwhile`);
    expect(failures).toEqual([]);
    expect(promoted, `promotes executed (${refused} refused by the check)`).toBeGreaterThanOrEqual(2);
    expect(acked).toBeGreaterThan(0);

    await stack.waitLoaded(60_000);
    // FINAL collapses retried copies; each acknowledged entry has its own id, so the count must match exactly.
    expect(await store.count({ tenant })).toBe(acked);
    const stats = await store.rowStats('telemetry', tenant);
    expect(stats.final).toBe(acked);
    expect(stats.distinctIds).toBe(acked);
  });
});
