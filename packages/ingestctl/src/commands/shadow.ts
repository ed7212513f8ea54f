import { parseDay } from '@ingest/storage';
import { parse, table, UsageError, type Command, type Io } from '../cli.ts';
import { EXIT, type ExitCode } from '../exit-codes.ts';
import { callSink, failure, SinkUnreachableError, whoAmI } from './replay.ts';

const HELP = `ingestctl shadow — compare the shadow table with live, swap a verified day in, clean up

  ingestctl shadow diff [--day YYYY-MM-DD]... [--tenant T] [--only-diff] [--json]
      live vs shadow per day, tenant, type and hour: distinct-entry counts and a checksum of the
      ids (sum of cityHash64(id)). Rows that differ are marked "≠". Then totals per tenant (in
      --json: tenantTotals), and the all-tenants line. Without --day: every day the shadow holds.
  ingestctl shadow promote --day YYYY-MM-DD [--yes] [--allow-loss] [--json]
      plan first (nothing changes without --yes), then
      ALTER TABLE telemetry REPLACE PARTITION <yyyymmdd> FROM telemetry_shadow:
      live's WHOLE day becomes exactly the shadow's day. Refused when the shadow holds nothing for
      that day, or when live holds entries the shadow lacks (they would be deleted) unless
      --allow-loss.
  ingestctl shadow drop [--day YYYY-MM-DD] [--yes] [--json]
      empty the shadow table (TRUNCATE), or one day of it; plan first, --yes to do it.

Exit codes: diff 0 identical, 1 different; promote 0 done (or a plan that --yes would carry out),
1 refused or a plan that would be refused, 4 promoted but live does not equal the shadow; any
command 2 usage, 3 sink writer unreachable. The full table: ingestctl --help.

Days are UTC (the tables are partitioned by toYYYYMMDD(ts)). Promote and drop are appended to the
audit log. Runs through the sink writer (SINK_URL, default http://127.0.0.1:8082).
See runbooks/replay.md for the whole procedure.`;

interface DiffRow {
  day: string;
  tenant: string;
  type: string;
  hour: string;
  liveCount: number;
  shadowCount: number;
  liveChecksum: string;
  shadowChecksum: string;
  equal: boolean;
}
interface DiffAnswer {
  live: string;
  shadow: string;
  tenant: string | null;
  days: string[];
  equal: boolean;
  totals: { live: number; shadow: number; buckets: number; differing: number };
  rows: DiffRow[];
}
interface PromotePlan {
  day: number;
  partitionId: string;
  source: string;
  target: string;
  sql: string;
  liveRows: number;
  shadowRows: number;
  shadowOnly: number;
  liveOnly: number;
  tenants: Array<{ tenant: string; live: number; shadow: number }>;
}
interface PromoteAnswer {
  executed: boolean;
  plan: PromotePlan;
  result?: { liveRowsBefore: number; liveRowsAfter: number; shadowRows: number; liveEqualsShadow: boolean };
  audit?: { file: string; topic?: string };
}
interface DropAnswer {
  executed: boolean;
  plan: { table: string; days: Array<{ day: string; rows: number }>; rows: number; sql: string };
  result?: { rowsBefore: number; rowsAfter: number };
}

function dayArg(raw: string): string {
  const d = parseDay(raw);
  if (typeof d === 'string') throw new UsageError(`--day: ${d}`);
  return String(d);
}

const red = (s: string, on: boolean) => (on ? `\x1b[1;31m${s}\x1b[0m` : s);

export function formatDiff(d: DiffAnswer, onlyDiff: boolean, color: boolean): string {
  if (d.days.length === 0) return `${d.shadow} is empty: nothing to compare (replay into it first, or pass --day to see live alone)`;
  const lines = [`${d.live} (live) vs ${d.shadow} (shadow), day(s) ${d.days.join(', ')}, ${d.tenant ? `tenant ${d.tenant}` : 'all tenants'}`, ''];
  const rows = onlyDiff ? d.rows.filter((r) => !r.equal) : d.rows;
  const t = table(
    rows.map((r) => ({
      '': r.equal ? '' : '≠',
      'hour (utc)': `${r.hour.slice(0, 10)} ${r.hour.slice(11, 13)}:00`,
      tenant: r.tenant,
      type: r.type,
      live: r.liveCount,
      shadow: r.shadowCount,
      'shadow-live': r.shadowCount - r.liveCount,
      'live checksum': r.liveChecksum,
      'shadow checksum': r.shadowChecksum,
    })),
  );
  // Highlight whole lines that differ (the marker column stays for non-colour output and logs).
  lines.push(
    t
      .split('\n')
      .map((l) => (l.startsWith('≠') ? red(l, color) : l))
      .join('\n'),
  );
  lines.push('');
  const signed = (n: number) => `${n >= 0 ? '+' : ''}${n}`;
  // Per tenant first: one tenant's loss and another's surplus must not net out into one number.
  const per = tenantTotals(d.rows);
  if (!d.equal && per.length > 0) {
    lines.push('per tenant (every hour compared, not only the rows shown):');
    lines.push(
      table(per.map((t) => ({ '': t.differing > 0 ? '≠' : '', tenant: t.tenant, live: t.live, shadow: t.shadow, 'shadow-live': signed(t.shadow - t.live), 'buckets differing': t.differing })))
        .split('\n')
        .map((l) => `  ${l}`)
        .join('\n'),
    );
    lines.push('');
  }
  const all = d.tenant ? `tenant ${d.tenant}` : 'all tenants together';
  lines.push(
    d.equal
      ? `IDENTICAL: ${d.totals.buckets} buckets, live ${d.totals.live} = shadow ${d.totals.shadow} entries, checksums equal (${all})`
      : red(`DIFFERENT: ${d.totals.differing} of ${d.totals.buckets} buckets differ; ${all}: live ${d.totals.live}, shadow ${d.totals.shadow} entries (shadow ${signed(d.totals.shadow - d.totals.live)}; see per tenant above)`, color),
  );
  return lines.join('\n');
}

export interface TenantTotal {
  tenant: string;
  live: number;
  shadow: number;
  buckets: number;
  differing: number;
}

/** Live and shadow entries per tenant over all compared buckets, sorted by tenant. */
export function tenantTotals(rows: DiffRow[]): TenantTotal[] {
  const by = new Map<string, TenantTotal>();
  for (const r of rows) {
    const t = by.get(r.tenant) ?? { tenant: r.tenant, live: 0, shadow: 0, buckets: 0, differing: 0 };
    t.live += r.liveCount;
    t.shadow += r.shadowCount;
    t.buckets++;
    if (!r.equal) t.differing++;
    by.set(r.tenant, t);
  }
  return [...by.values()].sort((a, b) => (a.tenant < b.tenant ? -1 : a.tenant > b.tenant ? 1 : 0));
}

export function formatPromotePlan(p: PromotePlan): string {
  const day = `${p.partitionId.slice(0, 4)}-${p.partitionId.slice(4, 6)}-${p.partitionId.slice(6, 8)}`;
  const lines = [
    `PROMOTE PLAN — day ${day} (partition ${p.partitionId})`,
    `will run         ${p.sql}`,
    `effect           live's whole day ${day} is replaced by the shadow's copy of it`,
    `live now         ${p.liveRows} entries`,
    `shadow           ${p.shadowRows} entries`,
    `added to live    ${p.shadowOnly} (in shadow, missing from live: the repair)`,
    `LOST from live   ${p.liveOnly} (in live, missing from shadow)${p.liveOnly > 0 ? '  ← promote refuses unless --allow-loss' : ''}`,
    '',
    table(p.tenants.map((t) => ({ tenant: t.tenant, live: t.live, shadow: t.shadow, change: t.shadow - t.live }))),
  ];
  const newTenants = p.tenants.filter((t) => t.live === 0 && t.shadow > 0).map((t) => t.tenant);
  if (newTenants.length > 0) lines.push('', `note: ${newTenants.join(', ')} have no live entries that day; check they belong in live before promoting.`);
  if (p.shadowRows === 0) lines.push('', 'the shadow holds nothing for this day: promote would be refused.');
  return lines.join('\n');
}

/** Why `promote --yes` would be refused with this plan, or undefined when it would go ahead. */
export function promoteRefusal(p: PromotePlan, allowLoss: boolean): string | undefined {
  if (p.shadowRows === 0) return 'the shadow holds nothing for this day (promote would empty it)';
  if (p.liveOnly > 0 && !allowLoss) return `${p.liveOnly} live entries are missing from the shadow and would be deleted (--allow-loss to accept)`;
  return undefined;
}

async function diffCmd(io: Io, values: { day?: string[] | undefined; tenant?: string | undefined; 'only-diff'?: boolean | undefined; json?: boolean | undefined }): Promise<ExitCode> {
  const u = new URLSearchParams();
  for (const d of values.day ?? []) u.append('day', dayArg(d));
  if (values.tenant) u.set('tenant', values.tenant);
  const a = await callSink<DiffAnswer>(io, 'GET', `/admin/v1/shadow/diff?${u.toString()}`);
  if (a.status !== 200) return failure(io, 'diff failed', a);
  io.out(values.json ? JSON.stringify({ ...a.body, tenantTotals: tenantTotals(a.body.rows) }) : formatDiff(a.body, values['only-diff'] === true, process.stdout.isTTY === true));
  // Like diff(1): a script can gate "promote, then expect IDENTICAL" on the exit code alone.
  return a.body.equal ? EXIT.OK : EXIT.CHECK_FAILED;
}

export const shadow: Command = {
  name: 'shadow',
  summary: 'diff the shadow table against live, promote a day, drop the shadow',
  help: HELP,
  async run(argv, io) {
    const { values, positionals } = parse(argv, {
      day: { type: 'string', multiple: true },
      tenant: { type: 'string' },
      'only-diff': { type: 'boolean' },
      yes: { type: 'boolean' },
      'allow-loss': { type: 'boolean' },
    });
    if (values.help) {
      io.out(HELP);
      return EXIT.OK;
    }
    const [sub, ...extra] = positionals;
    if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
    const args = ['shadow', ...argv];
    const who = whoAmI(io.env);
    try {
      switch (sub) {
        case 'diff':
          return await diffCmd(io, values);
        case 'promote': {
          const days = values.day ?? [];
          if (days.length !== 1) throw new UsageError('shadow promote needs exactly one --day YYYY-MM-DD');
          const day = dayArg(days[0] as string);
          const a = await callSink<PromoteAnswer>(io, 'POST', '/admin/v1/shadow/promote', { day, yes: values.yes === true, allowLoss: values['allow-loss'] === true, who, args });
          if (a.status !== 200) {
            return failure(io, 'promote refused', a);
          }
          const refusal = a.body.executed ? undefined : promoteRefusal(a.body.plan, values['allow-loss'] === true);
          if (values.json) io.out(JSON.stringify(a.body));
          else if (!a.body.executed) io.out(`${formatPromotePlan(a.body.plan)}\n\n${refusal ? `REFUSED: ${refusal}; nothing changed.` : 'nothing changed: run the same command with --yes to promote.'}`);
          else {
            const r = a.body.result;
            io.out(
              `promoted ${a.body.plan.sql}\n` +
                `live entries that day: ${r?.liveRowsBefore} → ${r?.liveRowsAfter} (shadow ${r?.shadowRows}); live ${r?.liveEqualsShadow ? 'now equals' : 'DOES NOT equal'} shadow for the day` +
                (a.body.audit ? `\naudit: ${a.body.audit.file}${a.body.audit.topic ? ` and topic ${a.body.audit.topic}` : ''}` : ''),
            );
          }
          if (refusal) {
            io.err(`promote would be refused: ${refusal}`);
            return EXIT.CHECK_FAILED;
          }
          return a.body.executed && a.body.result?.liveEqualsShadow === false ? EXIT.FAILED : EXIT.OK;
        }
        case 'drop': {
          const days = values.day ?? [];
          if (days.length > 1) throw new UsageError('shadow drop takes at most one --day');
          const day = days[0] === undefined ? undefined : dayArg(days[0]);
          const a = await callSink<DropAnswer>(io, 'POST', '/admin/v1/shadow/drop', { ...(day ? { day } : {}), yes: values.yes === true, who, args });
          if (a.status !== 200) return failure(io, 'drop refused', a);
          if (values.json) io.out(JSON.stringify(a.body));
          else {
            const p = a.body.plan;
            const what = `${p.sql}: ${p.rows} entries${p.days.length ? ` (${p.days.map((d) => `${d.day}: ${d.rows}`).join(', ')})` : ''}`;
            io.out(a.body.executed ? `dropped — ${what}; ${a.body.result?.rowsAfter ?? 0} left` : `DROP PLAN — ${what}\nnothing changed: run the same command with --yes to drop.`);
          }
          return EXIT.OK;
        }
        default:
          throw new UsageError(sub ? `unknown shadow command "${sub}"` : 'shadow needs a command: diff, promote or drop');
      }
    } catch (e) {
      if (e instanceof SinkUnreachableError) {
        io.err(e.message);
        return EXIT.UNREACHABLE;
      }
      throw e;
    }
  },
};
