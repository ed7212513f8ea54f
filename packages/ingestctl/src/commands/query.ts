import { TelemetryStore } from '@ingest/storage';
import { ENTRY_TYPES, type QueryPage, type RollupPage } from '@ingest/contracts';
import { adminHeaders, parse, parseDuration, parseWhen, table, UsageError, whyUnreachable, type Command, type Io } from '../cli.ts';
import { entryRows, filterParams, FILTER_HELP, FILTER_OPTIONS, intFlag, terminalWidth, type FilterValues } from './read.ts';
import { EXIT, exitForStatus, type ExitCode } from '../exit-codes.ts';
import { callSink, failure } from './replay.ts';

const HELP = `ingestctl query — read what landed in ClickHouse: entries, or counts

  ingestctl query --tenant <id> [filters] [--limit N] [--order desc|asc] [--cursor C] [--json | --ndjson]
  ingestctl query --tenant <id> --rollup 1m|1h [--from T --to T --type T --app A --level L --name N --label k=v]
  ingestctl query --tenant <id> [--type log|metric|event|health|alert] [--since 15m] --count [--json]
  ingestctl query --count --from <time> [--to <time>] [--by hour|day] [--tenant <id>] [--type T]
                  [--table telemetry|telemetry_shadow|telemetry_mirror] [--json]

Without --count it prints the tenant's entries, newest first (time, type, app, level or name, message
or value, labels), as a table that fits the terminal; --json prints {"entries":[…],"next":…} and --ndjson
one entry per line. --limit is 1..10000 (default 100); when more match, the last line gives the
--cursor for the next page (with --json, "next"). Reads are exact (FINAL) and bounded like GET /v2/query.
${FILTER_HELP}

--rollup prints the tenant's rollup buckets (GET /v2/query?rollup=…): entries per minute or hour by
type, app and level, and per metric series count, sum, min and max — exact like FINAL, trailing live by
up to ROLLUP_INTERVAL_MS. --json prints the answer, --ndjson one bucket per line.

--count prints the number of distinct entries (duplicates collapsed, exact: FINAL).

With --from (or --by) it counts per UTC hour or day, per tenant and type, over event times (the
ts column) in [--from, --to): the way to see which hour of which tenant is missing. A time is
RFC 3339 with a zone (2026-11-20T10:00:00Z), a UTC date (2026-11-20), "now", or relative to now
(write it with "=": --from=-2h, -30m, -7d). --to defaults to now, --by to hour. Buckets with no entries show as 0 (marked
"·") for every tenant and type that has entries elsewhere in the window. --json prints
{"rows":[{"bucket","tenant","type","entries"}],"truncated":bool,...} with only non-empty buckets.

Without --from, with CLICKHOUSE_URL set the count goes to ClickHouse; otherwise, and always for
buckets, through the sink writer (SINK_URL, default http://127.0.0.1:8082), which owns the
embedded chDB. INGEST_INTERNAL_TOKEN is sent when set.`;

export interface BucketAnswer {
  table: string;
  from: string;
  to: string;
  by: 'hour' | 'day';
  tenant: string | null;
  type: string | null;
  rows: Array<{ bucket: string; tenant: string; type: string; entries: number }>;
  truncated: boolean;
}

const STEP = { hour: 3_600_000, day: 86_400_000 } as const;
/** Above this many cells the human table lists non-empty buckets only. */
const MAX_FILLED_CELLS = 5_000;

/** The human table: every bucket of the window for every tenant/type seen, empty ones as 0 ·. */
export function bucketTable(a: BucketAnswer): string {
  const step = STEP[a.by];
  const first = Math.floor(Date.parse(a.from) / step) * step;
  const end = Date.parse(a.to);
  const series = [...new Set(a.rows.map((r) => `${r.tenant}\u0000${r.type}`))].sort();
  const cells = Math.ceil((end - first) / step) * series.length;
  const have = new Map(a.rows.map((r) => [`${r.bucket}\u0000${r.tenant}\u0000${r.type}`, r.entries]));
  const out: Array<Record<string, string | number>> = [];
  if (!a.truncated && cells <= MAX_FILLED_CELLS) {
    for (let b = first; b < end; b += step) {
      const iso = new Date(b).toISOString();
      for (const s of series) {
        const [tenant = '', type = ''] = s.split('\u0000');
        const n = have.get(`${iso}\u0000${s}`) ?? 0;
        out.push({ bucket: iso, tenant, type, entries: n === 0 ? '0 ·' : n });
      }
    }
  } else {
    for (const r of a.rows) out.push({ bucket: r.bucket, tenant: r.tenant, type: r.type, entries: r.entries });
  }
  const total = a.rows.reduce((s, r) => s + r.entries, 0);
  const head = `${a.table}: distinct entries per ${a.by} (UTC), event time in [${a.from}, ${a.to})${a.tenant ? `, tenant ${a.tenant}` : ''}${a.type ? `, type ${a.type}` : ''}`;
  const tail = `total ${total}${a.truncated ? ` (TRUNCATED: more buckets than the sink writer returns; narrow the window or add --tenant)` : ''}`;
  return [head, '', table(out), '', tail].join('\n');
}

async function bucketQuery(values: { tenant?: string | undefined; type?: string | undefined; from?: string | undefined; to?: string | undefined; by?: string | undefined; table?: string | undefined; json?: boolean | undefined }, io: Io): Promise<ExitCode> {
  const by = values.by ?? 'hour';
  if (by !== 'hour' && by !== 'day') throw new UsageError(`--by=${by}: use hour or day`);
  const now = Date.now();
  const to = values.to !== undefined ? parseWhen(values.to, now, '--to') : now;
  const from = values.from !== undefined ? parseWhen(values.from, now, '--from') : to - (by === 'hour' ? 86_400_000 : 30 * 86_400_000);
  if (from >= to) throw new UsageError(`--from (${new Date(from).toISOString()}) must be before --to (${new Date(to).toISOString()}): the window is [from, to)`);
  const qs = new URLSearchParams({ from: String(from), to: String(to), by });
  if (values.tenant) qs.set('tenant', values.tenant);
  if (values.type) qs.set('type', values.type);
  if (values.table) qs.set('table', values.table);
  const a = await callSink<BucketAnswer>(io, 'GET', `/admin/v1/count-buckets?${qs.toString()}`, undefined, 60_000);
  if (a.status !== 200) return failure(io, 'query failed', a);
  io.out(values.json ? JSON.stringify(a.body) : bucketTable(a.body));
  return EXIT.OK;
}

async function rollups(values: FilterValues & { rollup: string; limit?: string | undefined; order?: string | undefined; cursor?: string | undefined; json?: boolean | undefined; ndjson?: boolean | undefined }, io: Io): Promise<ExitCode> {
  if (values.rollup !== '1m' && values.rollup !== '1h') throw new UsageError(`--rollup ${values.rollup}: use 1m or 1h`);
  for (const f of ['q', 'id', 'cursor'] as const) if (values[f] !== undefined) throw new UsageError(`--${f} lists entries; rollup buckets have no ${f === 'q' ? 'message' : f}`);
  const qs = filterParams(values, Date.now());
  qs.set('rollup', values.rollup);
  if (values.limit !== undefined) qs.set('limit', String(intFlag(values.limit, 'limit', 10_000, 1, 10_000)));
  if (values.order !== undefined) {
    if (values.order !== 'desc' && values.order !== 'asc') throw new UsageError(`--order ${values.order}: use desc (newest first, the default) or asc`);
    qs.set('order', values.order);
  }
  const a = await callSink<RollupPage>(io, 'GET', `/admin/v1/query?${qs.toString()}`, undefined, 60_000);
  if (a.status !== 200) return failure(io, 'query failed', a);
  const page = a.body;
  if (values.json) io.out(JSON.stringify(page));
  else if (values.ndjson) {
    for (const c of page.counts) io.out(JSON.stringify({ kind: 'count', ...c }));
    for (const m of page.metrics) io.out(JSON.stringify({ kind: 'metric', ...m }));
  } else {
    const parts: string[] = [];
    if (page.counts.length > 0) parts.push(`entries per ${values.rollup === '1h' ? 'hour' : 'minute'} (UTC)`, '', table(page.counts.map((c) => ({ time: c.time, type: c.type, app: c.app, level: c.level, count: c.count }))));
    if (page.metrics.length > 0) {
      if (parts.length > 0) parts.push('');
      parts.push(`metric series per ${values.rollup === '1h' ? 'hour' : 'minute'} (UTC)`, '', table(page.metrics.map((m) => ({ time: m.time, name: m.name, app: m.app, labels: Object.entries(m.labels).map(([k, v]) => `${k}=${v}`).join(','), count: m.count, sum: m.sum, min: m.min, max: m.max }))));
    }
    io.out(parts.length === 0 ? '(no buckets match)' : parts.join('\n'));
  }
  return EXIT.OK;
}

/** The tenant's entries, one page, through the sink writer's /admin/v1/query (the same read as GET /v2/query). */
async function entries(values: FilterValues & { limit?: string | undefined; order?: string | undefined; cursor?: string | undefined; json?: boolean | undefined; ndjson?: boolean | undefined; since?: string | undefined; by?: string | undefined; table?: string | undefined }, io: Io): Promise<ExitCode> {
  if (values.since !== undefined || values.by !== undefined || values.table !== undefined) throw new UsageError('--since, --by and --table go with --count; to list entries use --from=-15m');
  if (values.json && values.ndjson) throw new UsageError('--json and --ndjson do not mix: pick one');
  const qs = filterParams(values, Date.now());
  qs.set('limit', String(intFlag(values.limit, 'limit', 100, 1, 10_000)));
  if (values.order !== undefined) {
    if (values.order !== 'desc' && values.order !== 'asc') throw new UsageError(`--order ${values.order}: use desc (newest first, the default) or asc`);
    qs.set('order', values.order);
  }
  if (values.cursor !== undefined) qs.set('cursor', values.cursor);
  const a = await callSink<QueryPage>(io, 'GET', `/admin/v1/query?${qs.toString()}`, undefined, 60_000);
  if (a.status !== 200) return failure(io, 'query failed', a);
  const page = a.body;
  if (values.json) io.out(JSON.stringify({ entries: page.entries, next: page.next }));
  else if (values.ndjson) for (const e of page.entries) io.out(JSON.stringify(e));
  else {
    io.out(page.entries.length === 0 ? '(no entries match)' : entryRows(page.entries, terminalWidth(io)).join('\n'));
    if (page.next !== null) io.out(`more: add --cursor ${page.next}`);
  }
  return EXIT.OK;
}

export const query: Command = {
  name: 'query',
  summary: "list a tenant's entries (filters, pages), or count them (total, or per hour/day)",
  help: HELP,
  async run(argv, io) {
    const { values } = parse(argv, {
      ...FILTER_OPTIONS,
      since: { type: 'string' },
      count: { type: 'boolean' },
      by: { type: 'string' },
      table: { type: 'string' },
      limit: { type: 'string' },
      order: { type: 'string' },
      cursor: { type: 'string' },
      ndjson: { type: 'boolean' },
      rollup: { type: 'string' },
    });
    if (values.help) {
      io.out(HELP);
      return EXIT.OK;
    }
    const { rollup } = values;
    if (rollup !== undefined) {
      if (values.count || values.since !== undefined || values.by !== undefined || values.table !== undefined) throw new UsageError('--rollup reads the rollups of live; --count, --since, --by and --table do not apply');
      if (values.json && values.ndjson) throw new UsageError('--json and --ndjson do not mix: pick one');
      return rollups({ ...values, rollup }, io);
    }
    if (!values.count) return entries(values, io);
    for (const f of ['app', 'label', 'level', 'q', 'name', 'id', 'limit', 'order', 'cursor', 'ndjson'] as const) {
      if (values[f] !== undefined) throw new UsageError(`--${f} lists entries; --count takes --tenant, --type, --since or --from/--to/--by`);
    }
    if (values.type !== undefined && !(ENTRY_TYPES as readonly string[]).includes(values.type)) throw new UsageError(`--type ${values.type}: use one of ${ENTRY_TYPES.join(', ')}`);
    if (values.from !== undefined || values.to !== undefined || values.by !== undefined) {
      if (values.since !== undefined) throw new UsageError('--since and --from/--to/--by do not mix: use --from -6h');
      return bucketQuery(values, io);
    }
    if (values.table !== undefined) throw new UsageError('--table goes with --from/--by');
    if (!values.tenant) throw new UsageError('query needs --tenant <id> (or --from/--by for every tenant per hour or day)');
    const sinceMs = values.since ? Date.now() - parseDuration(values.since) : undefined;
    const q = { tenant: values.tenant, ...(values.type ? { type: values.type } : {}), ...(sinceMs !== undefined ? { sinceMs } : {}) };

    let count: number;
    const chUrl = io.env['CLICKHOUSE_URL'];
    if (chUrl) {
      const store = await TelemetryStore.open({ url: chUrl, database: io.env['CLICKHOUSE_DATABASE'] ?? 'default' });
      try {
        count = await store.count(q);
      } finally {
        await store.close();
      }
    } else {
      const sink = io.env['SINK_URL'] ?? `http://127.0.0.1:${io.env['SINK_PORT'] ?? '8082'}`;
      const u = new URL('/admin/v1/count', sink);
      u.searchParams.set('tenant', q.tenant);
      if (q.type) u.searchParams.set('type', q.type);
      if (q.sinceMs !== undefined) u.searchParams.set('since', String(q.sinceMs));
      let res: Response;
      try {
        res = await fetch(u, { headers: adminHeaders(io.env), signal: AbortSignal.timeout(30_000) });
      } catch (e) {
        io.err(`cannot reach the sink writer at ${sink}: ${whyUnreachable(e, 30_000)}; is the product running (pnpm start)?`);
        return EXIT.UNREACHABLE;
      }
      const body = (await res.json()) as { count?: number; error?: { message: string } };
      if (!res.ok || body.count === undefined) {
        io.err(`query failed: ${body.error?.message ?? res.status}`);
        return exitForStatus(res.status);
      }
      count = body.count;
    }
    io.out(values.json ? JSON.stringify({ count }) : `${count} entries${values.type ? ` of type ${values.type}` : ''} for tenant ${values.tenant}${values.since ? ` in the last ${values.since}` : ''}`);
    return EXIT.OK;
  },
};
