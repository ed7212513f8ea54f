import { TelemetryStore } from '@ingest/storage';
import { adminHeaders, parse, parseDuration, UsageError, type Command } from '../cli.ts';
import { EXIT, exitForStatus } from '../exit-codes.ts';

const HELP = `ingestctl query — read what landed in ClickHouse

  ingestctl query --tenant <id> [--type log|metric|event|health|alert] [--since 15m] [--count] [--json]

--count prints the number of distinct entries (duplicates collapsed). With CLICKHOUSE_URL set the
query goes to ClickHouse; otherwise through the sink writer (SINK_URL, default
http://127.0.0.1:8082), which owns the embedded chDB.`;

export const query: Command = {
  name: 'query',
  summary: 'count entries of a tenant in ClickHouse',
  help: HELP,
  async run(argv, io) {
    const { values } = parse(argv, { tenant: { type: 'string' }, type: { type: 'string' }, since: { type: 'string' }, count: { type: 'boolean' } });
    if (values.help) {
      io.out(HELP);
      return EXIT.OK;
    }
    if (!values.tenant) throw new UsageError('query needs --tenant <id>');
    if (!values.count) throw new UsageError('query currently answers counts: add --count');
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
        io.err(`cannot reach the sink writer at ${sink} (${(e as Error).message}); is the product running (pnpm start)?`);
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
