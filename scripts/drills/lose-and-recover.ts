/**
 * Drill (a): lose an hour of one tenant's data and get it back, the way runbooks/replay.md says.
 * Self-contained: starts a throw-away embedded stack, stops it at the end. See runbooks/drills.md.
 *
 *   pnpm drill:lose-and-recover        (or: node --import tsx scripts/drills/lose-and-recover.ts)
 */
import { DrillFailure, keyOf, ingestctl, logEntries, runDrill, send, startDrillStack, step, waitFor } from './common.ts';

const H = 3_600_000;
const PER_HOUR = 300;
const LIMIT_MS = Number(process.env['DRILL_TIMEOUT_MS'] ?? 240_000);

interface Buckets {
  rows: Array<{ bucket: string; tenant: string; type: string; entries: number }>;
}

const total = (b: Buckets, tenant?: string) => b.rows.filter((r) => tenant === undefined || r.tenant === tenant).reduce((n, r) => n + r.entries, 0);
const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');

await runDrill('lose-and-recover', LIMIT_MS, async (track) => {
  step(1, 'start a throw-away embedded stack and two tenants');
  const d = track(await startDrillStack('lose', ['drill-acme', 'drill-other']));
  const acme = keyOf(d, 'drill-acme');
  const other = keyOf(d, 'drill-other');

  // Three whole UTC hours ending at the last full hour: event times the normalizer accepts (up to
  // 7 days old) and hours that are complete, so a missing one stands out.
  const base = Math.floor(Date.now() / H) * H - 3 * H;
  const lost = base + H;
  const day = iso(lost).slice(0, 10);
  step(2, `ingest ${PER_HOUR} entries per hour for each tenant, event times ${iso(base)} .. ${iso(base + 3 * H)}`);
  for (let h = 0; h < 3; h++) {
    await send(d, acme, logEntries(PER_HOUR, base + h * H, H, `acme h${h}`));
    await send(d, other, logEntries(PER_HOUR, base + h * H, H, `other h${h}`));
  }
  const window = ['--from', iso(base), '--to', iso(base + 3 * H)];
  const counts = async (extra: string[] = []): Promise<Buckets> => JSON.parse((await ingestctl(d, ['query', '--count', ...window, '--by', 'hour', ...extra, '--json'], { quiet: true })).out) as Buckets;
  await waitFor('the loader to load all 1800 entries', 60_000, async () => total(await counts()) === 6 * PER_HOUR);
  const before = await counts();

  step(3, `DRILL ONLY: delete drill-acme's entries of ${iso(lost)} from the live table (POST /admin/v1/drill/delete-hour)`);
  const del = await fetch(new URL('/admin/v1/drill/delete-hour', d.sinkUrl), {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-ingest-internal-token': d.token },
    body: JSON.stringify({ tenant: 'drill-acme', hour: iso(lost) }),
    signal: AbortSignal.timeout(30_000),
  });
  const deleted = ((await del.json()) as { deleted?: number }).deleted ?? -1;
  if (del.status !== 200 || deleted !== PER_HOUR) throw new DrillFailure(`the drill delete answered ${del.status}, deleted ${deleted}`);
  console.log(`deleted ${deleted} live entries of drill-acme in ${iso(lost)}`);

  step(4, 'find the lost window: counts per hour, tenant and type (runbooks/replay.md step 1)');
  await ingestctl(d, ['query', '--count', ...window, '--by', 'hour']);
  const after = await counts();
  // The lost window is the tenant-hour that had entries before and has fewer now.
  const key = (r: Buckets['rows'][number]) => `${r.bucket} ${r.tenant}`;
  const now = new Map<string, number>();
  for (const r of after.rows) now.set(key(r), (now.get(key(r)) ?? 0) + r.entries);
  const had = new Map<string, number>();
  for (const r of before.rows) had.set(key(r), (had.get(key(r)) ?? 0) + r.entries);
  const gaps = [...had].filter(([k, n]) => (now.get(k) ?? 0) < n).map(([k, n]) => ({ k, missing: n - (now.get(k) ?? 0) }));
  if (gaps.length !== 1 || gaps[0]?.k !== `${new Date(lost).toISOString()} drill-acme`) throw new DrillFailure(`expected exactly drill-acme at ${iso(lost)} to be missing, found ${JSON.stringify(gaps)}`);
  console.log(`found: drill-acme is missing ${gaps[0].missing} entries in the hour starting ${iso(lost)}`);
  await ingestctl(d, ['sql', `SELECT tenant_id, toStartOfHour(ts) AS hour, count() AS entries FROM telemetry FINAL WHERE tenant_id = 'drill-acme' AND toDate(ts) = '${day}' GROUP BY tenant_id, hour ORDER BY hour`]);

  step(5, 'start from an empty shadow table');
  await ingestctl(d, ['shadow', 'drop', '--yes']);

  step(6, 'replay the lost hour by event time into the shadow (plan, then run) and diff: the diagnostic');
  const hour = ['--event-from', iso(lost), '--event-to', iso(lost + H), '--tenant', 'drill-acme', '--shadow'];
  const plan = JSON.parse((await ingestctl(d, ['replay', ...hour, '--json'], { quiet: true })).out) as { entries: number; inEventWindow: number; toInsert: number };
  await ingestctl(d, ['replay', ...hour]);
  if (plan.inEventWindow !== PER_HOUR || plan.toInsert !== PER_HOUR) throw new DrillFailure(`the hour's plan has ${plan.inEventWindow} entries in the event window, ${plan.toInsert} to insert; expected ${PER_HOUR}`);
  await ingestctl(d, ['replay', ...hour, '--yes']);
  await ingestctl(d, ['shadow', 'diff', '--day', day, '--tenant', 'drill-acme', '--only-diff'], { expect: [1] });

  step(7, `replay the whole UTC day ${day} by event time (promote swaps whole days), promote it, diff`);
  const wholeDay = ['--event-from', day, '--event-to', iso(Date.parse(day) + 24 * H), '--shadow'];
  await ingestctl(d, ['replay', ...wholeDay]);
  const run = JSON.parse((await ingestctl(d, ['replay', ...wholeDay, '--yes', '--json'], { quiet: true })).out) as { status: string; inserted: number; skippedDuplicates: number };
  console.log(`replay: ${run.status}, inserted ${run.inserted}, skipped as duplicates ${run.skippedDuplicates}`);
  await ingestctl(d, ['status']);
  await ingestctl(d, ['shadow', 'promote', '--day', day]);
  await ingestctl(d, ['shadow', 'promote', '--day', day, '--yes']);
  await ingestctl(d, ['shadow', 'diff', '--day', day]);

  step(8, 'check: every hour of every tenant is back');
  await ingestctl(d, ['query', '--count', ...window, '--by', 'hour']);
  const healed = await counts();
  if (JSON.stringify(healed.rows) !== JSON.stringify(before.rows)) throw new DrillFailure('the counts after the promote differ from the counts before the loss');
  await ingestctl(d, ['shadow', 'drop', '--yes']);

  return [
    `lost ${deleted} entries of drill-acme in ${iso(lost)} (drill delete)`,
    `found with: ingestctl query --count --from ${iso(base)} --to ${iso(base + 3 * H)} --by hour`,
    `replayed the hour by event time (${plan.inEventWindow} of ${plan.entries} scanned entries in the window), then day ${day}: inserted ${run.inserted}`,
    `promoted ${day}; shadow diff IDENTICAL; counts per hour equal to before the loss (${total(healed)} entries)`,
  ];
});
