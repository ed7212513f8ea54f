import { adminHeaders, parse, table, whyUnreachable, type Command, type Io } from '../cli.ts';
import { EXIT } from '../exit-codes.ts';

const HELP = `ingestctl status — health, budget use, loader lag and log damage of each service

  ingestctl status [--json]

A service that is up but not ready shows the checks that keep it out (e.g. the sink writer's log
refusing appends after a failed write or fsync). LOG DAMAGE is the number of damaged records the
sink writer's embedded log stepped over and quarantined since it started (runbooks/ingest-log-torn-tail.md).

Service URLs: EDGE_URL, NORMALIZER_URL, SINK_URL (defaults: 127.0.0.1 ports 8080, 8081, 8082) for
/healthz and /readyz; EDGE_ADMIN_URL, NORMALIZER_ADMIN_URL, SINK_ADMIN_URL (defaults: 127.0.0.1 ports
EDGE_ADMIN_PORT 9080, NORMALIZER_ADMIN_PORT 9081, SINK_ADMIN_PORT 9082) for /status, which the services
serve only on their admin listeners.
Exit code: 0 every service ready, 1 one is up but not ready, 3 one did not answer.`;

interface ServiceStatus {
  service: string;
  url: string;
  healthy: boolean;
  ready: boolean;
  checks?: Record<string, string>;
  status?: Record<string, unknown>;
  error?: string;
}

/** How long each probe waits for an answer. */
const PROBE_TIMEOUT_MS = 5000;

async function probe(service: string, url: string, adminUrl: string, env: Io['env']): Promise<ServiceStatus> {
  const get = async (base: string, p: string) => {
    const u = new URL(p, base).toString();
    let r: Response;
    try {
      r = await fetch(u, { headers: adminHeaders(env), signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
    } catch (e) {
      throw new Error(`${u}: ${whyUnreachable(e, PROBE_TIMEOUT_MS)}`);
    }
    if (r.status === 401 || r.status === 403) throw new Error(`${u}: unauthorised (HTTP ${r.status}; set INGEST_INTERNAL_TOKEN to the services' token)`);
    let body: Record<string, unknown>;
    try {
      body = (await r.json()) as Record<string, unknown>;
    } catch {
      throw new Error(`${u}: answered HTTP ${r.status} with a body that is not JSON (is this the ingest service?)`);
    }
    return { ok: r.ok, body };
  };
  try {
    // An unreachable admin listener (wrong *_ADMIN_URL, or run from another host) is not a service
    // that is down: health and readiness still come from the public port.
    const [h, r, s] = await Promise.all([get(url, '/healthz'), get(url, '/readyz'), get(adminUrl, '/status').catch((e: unknown) => ({ ok: false, body: { error: `admin listener ${(e as Error).message}` } }))]);
    return { service, url, healthy: h.ok, ready: r.ok, checks: r.body['checks'] as Record<string, string>, status: s.body };
  } catch (e) {
    return { service, url, healthy: false, ready: false, error: (e as Error).message };
  }
}

/** Why a service that answers is not ready: its checks, e.g. "log: appends failing: …". */
function notReady(s: ServiceStatus): string {
  const checks = Object.entries(s.checks ?? {}).map(([k, v]) => `${k}: ${v}`).join(', ');
  return checks === '' ? 'up, not ready' : `up, not ready (${checks.slice(0, 100)})`;
}

function pct(b: unknown): string {
  const s = b as { bytes?: number; maxBytes?: number; entries?: number; maxEntries?: number } | undefined;
  if (!s || s.maxBytes === undefined || s.maxEntries === undefined) return '-';
  return `${(((s.bytes ?? 0) / s.maxBytes) * 100).toFixed(1)}% bytes, ${(((s.entries ?? 0) / s.maxEntries) * 100).toFixed(1)}% entries`;
}

export const status: Command = {
  name: 'status',
  summary: 'health, in-flight budget use and consumer lag of each service',
  help: HELP,
  async run(argv, io) {
    const { values } = parse(argv, {});
    if (values.help) {
      io.out(HELP);
      return EXIT.OK;
    }
    const e = io.env;
    const urls = {
      edge: e['EDGE_URL'] ?? `http://127.0.0.1:${e['EDGE_PORT'] ?? 8080}`,
      normalizer: e['NORMALIZER_URL'] ?? `http://127.0.0.1:${e['NORMALIZER_PORT'] ?? 8081}`,
      'sink-writer': e['SINK_URL'] ?? `http://127.0.0.1:${e['SINK_PORT'] ?? 8082}`,
    };
    const admin: Record<keyof typeof urls, string> = {
      edge: e['EDGE_ADMIN_URL'] ?? `http://127.0.0.1:${e['EDGE_ADMIN_PORT'] ?? 9080}`,
      normalizer: e['NORMALIZER_ADMIN_URL'] ?? `http://127.0.0.1:${e['NORMALIZER_ADMIN_PORT'] ?? 9081}`,
      'sink-writer': e['SINK_ADMIN_URL'] ?? `http://127.0.0.1:${e['SINK_ADMIN_PORT'] ?? 9082}`,
    };
    const all = await Promise.all((Object.keys(urls) as Array<keyof typeof urls>).map((n) => probe(n, urls[n], admin[n], e)));
    if (values.json) {
      io.out(JSON.stringify({ services: all }));
    } else {
      io.out(
        table(
          all.map((s) => {
            const lag = (s.status?.['lag'] as { total?: number } | undefined)?.total;
            const damaged = s.status?.['logCorruptRecords'];
            return {
              service: s.service,
              url: s.url,
              health: s.error ? `down: ${s.error}` : s.ready ? 'ready' : s.healthy ? notReady(s) : 'down',
              budget: pct(s.status?.['budget']),
              lag: lag === undefined ? '-' : String(lag),
              'log damage': typeof damaged === 'number' ? (damaged === 0 ? '0' : `${damaged} record(s) quarantined`) : '-',
            };
          }),
        ),
      );
    }
    // A service that did not answer at all is a different failure from one that answered "not ready".
    if (all.some((s) => s.error !== undefined)) return EXIT.UNREACHABLE;
    return all.every((s) => s.ready) ? EXIT.OK : EXIT.CHECK_FAILED;
  },
};
