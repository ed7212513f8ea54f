/**
 * Drill (b): cut a tenant over to v2 and back to legacy while it keeps sending, through a real
 * nginx, with the legacy stand-in; then prove every acknowledged entry is in exactly one
 * authoritative place. Self-contained; see runbooks/drills.md.
 *
 *   pnpm drill:cutover-under-load      (or: node --import tsx scripts/drills/cutover-under-load.ts)
 */
import { randomUUID } from 'node:crypto';
import { freePort } from '@ingest/supervisor';
import { startLegacyFixture, startNginx, type LegacyFixture, type NginxHandle } from '@ingest/testkit';
import { DrillFailure, ingestctl, keyOf, runDrill, startDrillStack, step, waitFor, type DrillStack } from './common.ts';

const TENANT = 'drill-move';
const LB_SECRET = `drill-lb-${randomUUID()}`;
const LIMIT_MS = Number(process.env['DRILL_TIMEOUT_MS'] ?? 240_000);
const BATCH = 10;

interface Load {
  acked: string[];
  /** Batches that needed a retry, by the status (or error) of the failed attempt. */
  retried: Map<string, number>;
  /** Batches that never got a 2xx in ATTEMPTS tries. */
  lost: number;
  requests: number;
  stop(): Promise<void>;
}

/** A producer retries a 429/503/reset with the same entries (same ids), as the SDK does. */
const ATTEMPTS = 5;

/** One producer sending batches through the LB back to back until stopped; remembers what got a 2xx. */
function startLoad(url: string, apiKey: string): Load {
  const load: Load = { acked: [], retried: new Map(), lost: 0, requests: 0, stop: async () => undefined };
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const entries = Array.from({ length: BATCH }, (_, i) => ({ id: randomUUID(), type: 'log', timestamp: Date.now(), app: 'drill', data: { level: 'info', message: `move ${load.requests}.${i}` } }));
      let ok = false;
      for (let attempt = 1; attempt <= ATTEMPTS && !ok; attempt++) {
        let why: string;
        try {
          const res = await fetch(new URL('/v2/ingest', url), { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` }, body: JSON.stringify(entries), signal: AbortSignal.timeout(10_000) });
          await res.arrayBuffer();
          ok = res.status >= 200 && res.status < 300;
          why = String(res.status);
        } catch (e) {
          why = (e as Error).message.slice(0, 60);
        }
        load.requests++;
        if (!ok) load.retried.set(why, (load.retried.get(why) ?? 0) + 1);
      }
      if (ok) load.acked.push(...entries.map((e) => e.id));
      else load.lost++;
    }
  })();
  load.stop = async () => {
    stopped = true;
    await loop;
  };
  return load;
}

await runDrill('cutover-under-load', LIMIT_MS, async (track) => {
  let legacy: LegacyFixture | undefined;
  let nginx: NginxHandle | undefined;
  let load: Load | undefined;
  try {
    step(1, 'start the legacy stand-in, the embedded stack (its edge forwards to legacy) and nginx in front');
    const legacyPort = await freePort();
    const edgeEnv = { LEGACY_URL: `http://127.0.0.1:${legacyPort}`, LB_SHARED_SECRET: LB_SECRET, CUTOVER_RELOAD_MS: '100' };
    const d: DrillStack = track(await startDrillStack('move', [TENANT], edgeEnv));
    legacy = await startLegacyFixture({ tenantsFile: d.env['TENANTS_FILE'] ?? '', port: legacyPort });
    console.log(`legacy stand-in on ${legacy.url} (as \`pnpm legacy-standin\` runs it)`);
    const edgePort = new URL(d.stack.edgeUrl).port;
    // nginx runs unprivileged with its own prefix (deploy/local/.run/nginx-<port>/, the rendered map included).
    nginx = await startNginx({ port: await freePort(), edgeUpstream: `127.0.0.1:${edgePort}`, legacyUpstream: `127.0.0.1:${legacyPort}`, lbSecret: LB_SECRET });
    console.log(`nginx on ${nginx.url} (deploy/local/nginx.sh)`);
    Object.assign(d.env, nginx.env, { CUTOVER_EDGE_URLS: d.stack.edge.adminUrl, LEGACY_COUNT_URL: legacy.countUrl });
    await ingestctl(d, ['cutover', 'sync']);

    step(2, `send ${TENANT}'s traffic through nginx, continuously, for the rest of the drill`);
    const l = startLoad(nginx.url, keyOf(d, TENANT));
    load = l;
    const more = async (what: string, n: number) => {
      const target = l.requests + n;
      await waitFor(what, 30_000, async () => l.requests >= target);
    };
    await more('20 requests on legacy', 20);

    step(3, `cut ${TENANT} over to v2 under load`);
    await ingestctl(d, ['cutover', 'add', TENANT, '--dry-run']);
    await ingestctl(d, ['cutover', 'add', TENANT]);
    const v2From = l.acked.length;
    await more('20 requests on v2', 20);
    await ingestctl(d, ['cutover', 'status', TENANT, '--hours', '1'], { expect: [0, 1] });

    step(4, `roll ${TENANT} back to legacy under load`);
    const v2To = l.acked.length;
    await ingestctl(d, ['cutover', 'remove', TENANT]);
    await more('20 requests on legacy again', 20);
    await l.stop();
    load = undefined;
    await ingestctl(d, ['cutover', 'list']);

    step(5, 'check: every acknowledged entry is in exactly one place (legacy, or v2 live)');
    const acked = new Set(l.acked);
    const v2Ids = async (): Promise<Set<string>> => {
      const r = await ingestctl(d, ['sql', `SELECT id FROM telemetry FINAL WHERE tenant_id = '${TENANT}'`, '--json'], { quiet: true });
      return new Set((JSON.parse(r.out) as { rows: string[][] }).rows.map((row) => row[0] ?? ''));
    };
    let v2 = new Set<string>();
    const lg = legacy;
    await waitFor('every acknowledged entry to be in legacy or loaded into v2', 30_000, async () => {
      v2 = await v2Ids();
      const old = lg.ids(TENANT);
      return [...acked].every((id) => v2.has(id) || old.has(id));
    });
    const inLegacy = legacy.ids(TENANT);
    const both = [...acked].filter((id) => v2.has(id) && inLegacy.has(id));
    if (both.length > 0) throw new DrillFailure(`${both.length} entries are in both legacy and v2`);
    const cutOverWindow = l.acked.slice(v2From, v2To);
    const v2During = cutOverWindow.filter((id) => v2.has(id)).length;
    // Between `add` returning and `remove` starting every request goes to v2; one batch may have
    // been in flight (sent to legacy) when `add` returned.
    if (v2During === 0 || v2During < cutOverWindow.length - BATCH) throw new DrillFailure(`only ${v2During} of ${cutOverWindow.length} entries sent while cut over reached v2`);
    if (l.lost > 0) throw new DrillFailure(`${l.lost} batches got no 2xx in ${ATTEMPTS} attempts during the flips`);
    const retries = [...l.retried].map(([why, n]) => `${n}× ${why}`).join(', ');
    await ingestctl(d, ['query', '--count', '--from=-1h', '--by', 'hour', '--tenant', TENANT]);

    return [
      `${l.requests} requests (${acked.size} entries) through nginx across cutover add and remove; every batch acknowledged${retries ? ` (retried as a producer does: ${retries})` : ', none retried'}`,
      `v2 holds ${v2.size}, legacy holds ${[...acked].filter((id) => inLegacy.has(id)).length}; none in both, none missing`,
      `cutover add → v2 took the tenant's traffic (${v2During} of ${cutOverWindow.length} entries acknowledged between add and remove); cutover remove → back to legacy`,
    ];
  } finally {
    await load?.stop();
    await nginx?.stop();
    await legacy?.close();
  }
});
