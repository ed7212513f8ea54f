import { userInfo } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { Presets, SingleBar } from 'cli-progress';
import type { ReplayJobView, ReplayPlan, ReplaySummary } from '@ingest/contracts';
import { adminHeaders, parse, table, UnreachableError, UsageError, type Command, type Io } from '../cli.ts';
import { EXIT, exitForStatus, type ExitCode } from '../exit-codes.ts';

const HELP = `ingestctl replay — re-read a window of the durable log into the shadow table

  ingestctl replay --from=<offset|time|earliest> --to=<offset|time|latest> --shadow
                   [--partition N]... [--tenant T] [--table telemetry_shadow] [--yes] [--json]
  ingestctl replay --event-from=<time> --event-to=<time> [--from=… --to=…] --shadow [--tenant T] [--yes]
  ingestctl replay --watch <job-id> [--json]   follow a job (after a lost terminal, say)
  ingestctl replay --cancel <job-id>           stop a job after its current chunk
  ingestctl replay --jobs [--json]             recent jobs on this sink writer

Without --yes it prints the plan and writes nothing: topic, each partition's exact offset range,
the time window those offsets cover, entry counts per partition and per tenant, how many the run
would insert and skip, the target shadow table, and earlier runs over the same offsets.
With --yes it replays with a progress bar and ends with: read, inserted, skipped as duplicates,
dead-lettered (undecodable, not inserted). --json prints the plan or the summary as JSON.

--from / --to
  1200                    a log offset; BOTH ends are included. Offsets are per partition: the
                          same range is applied to every selected partition (use --partition).
  2026-11-20T10:00:00Z    an ISO-8601 time with a zone (or a UTC date, 2026-11-20): a log append
                          time. The window is [from, to); the plan prints the offsets it resolved to.
  earliest / latest       the oldest retained / the newest offset at planning time

--event-from / --event-to  (ISO-8601 with a zone, or a UTC date; the window is [from, to))
  Keep only entries whose EVENT time (the ts column, what \`query --by hour\` shows) is in the
  window: repairs a bad mutation of old data without knowing when it was logged. --from/--to still
  choose which part of the log is read (default with --event-*: earliest..latest, everything
  retained; narrow it on a long log). The plan says how many of the scanned entries are in the
  event window; the others are read and counted as "outside the event window", never inserted.

Replay writes only to a shadow table, never to the live table telemetry, and never moves the live
loader's consumer offsets. It is idempotent: entries the shadow table already holds are skipped, so the
same range replayed twice inserts nothing the second time.

Runs inside the sink writer (it owns the log and, embedded, chDB): SINK_URL, default
http://127.0.0.1:8082. Every run is appended to the audit log. See runbooks/replay.md.

Exit codes: 0 done (or a plan with entries to replay); 1 refused, or the window holds no entries;
2 usage (missing --shadow, bad --from/--to, --from after --to, offsets outside the retained range,
a time window that ends before the first logged entry, unknown partition); 3 sink writer
unreachable; 4 the run FAILED or was CANCELLED. The full table: ingestctl --help.`;

/** The sink writer's admin base URL. */
export function sinkUrl(env: Io['env']): string {
  return env['SINK_URL'] ?? `http://127.0.0.1:${env['SINK_PORT'] ?? '8082'}`;
}

/** Who runs the command, for the audit log. */
export function whoAmI(env: Io['env']): string {
  const fromEnv = env['USER'] ?? env['LOGNAME'];
  if (fromEnv) return fromEnv;
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}

export class SinkUnreachableError extends UnreachableError {
  constructor(url: string, cause: unknown) {
    super('the sink writer', url, cause);
    this.message += '; is the product running (pnpm start)? Set SINK_URL to point elsewhere.';
    this.name = 'SinkUnreachableError';
  }
}

export interface SinkAnswer<T> {
  status: number;
  body: T & { error?: { code: string; message: string } };
}

/** One admin call to the sink writer; a connection failure becomes SinkUnreachableError. */
export async function callSink<T>(io: Io, method: 'GET' | 'POST' | 'DELETE', route: string, body?: unknown, timeoutMs = 120_000): Promise<SinkAnswer<T>> {
  const base = sinkUrl(io.env);
  let res: Response;
  try {
    res = await fetch(new URL(route, base), {
      method,
      headers: { ...adminHeaders(io.env), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (e) {
    throw new SinkUnreachableError(base, e);
  }
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) as SinkAnswer<T>['body'] };
  } catch {
    return { status: res.status, body: { error: { code: 'NOT_JSON', message: `HTTP ${res.status}: ${text.slice(0, 200)}` } } as SinkAnswer<T>['body'] };
  }
}

/**
 * A 400 from the sink is the operator's to fix (usage, printed with the help); the rest map as
 * exitForStatus says (a 409 is a refusal: another operation in progress, a promote that would lose
 * entries; nothing changed).
 */
export function failure(io: Io, what: string, a: SinkAnswer<unknown>): ExitCode {
  const msg = a.body.error?.message ?? `HTTP ${a.status}`;
  if (a.status === 400) throw new UsageError(msg);
  io.err(`${what}: ${msg}`);
  return exitForStatus(a.status);
}

// The sink writer's answers: shared with it through @ingest/contracts.
type Plan = ReplayPlan;
type Summary = ReplaySummary;
type JobView = ReplayJobView;

const MAX_TENANT_ROWS = 25;

function tenantsTable<T extends { tenant: string }>(rows: T[], map: (r: T) => Record<string, string | number>): string {
  const shown = rows.slice(0, MAX_TENANT_ROWS).map(map);
  const more = rows.length > MAX_TENANT_ROWS ? `\n… and ${rows.length - MAX_TENANT_ROWS} more tenants (--json lists all)` : '';
  return table(shown) + more;
}

function indent(s: string, by = '  '): string {
  return s
    .split('\n')
    .map((l) => by + l)
    .join('\n');
}

export function formatPlan(p: Plan): string {
  const lines: string[] = [];
  lines.push(`REPLAY PLAN — nothing has been written. Run the same command with --yes to replay.`, '');
  lines.push(`topic     ${p.topic}`);
  lines.push(`target    ${p.target} (shadow table; the live table is never written)`);
  lines.push(`tenant    ${p.tenant ?? 'all tenants'}`);
  lines.push(`window    --from=${p.window.from}  --to=${p.window.to}`);
  lines.push(`          ${p.window.meaning}`, '');
  lines.push(
    table(
      p.partitions.map((x) => ({
        partition: x.partition,
        retained: x.retained.high > x.retained.low ? `${x.retained.low}..${x.retained.high - 1}` : 'empty',
        'offsets (incl..incl)': x.firstOffset === null ? '(none)' : `${x.firstOffset}..${x.lastOffset}`,
        entries: x.entries,
        'to insert': x.toInsert,
        duplicates: x.duplicates,
        undecodable: x.undecodable,
        'logged from': x.logTime.first ?? '-',
        'logged to': x.logTime.last ?? '-',
      })),
    ),
  );
  lines.push('', 'how --from/--to resolved:');
  for (const x of p.partitions) {
    const head = `  partition ${x.partition}: `;
    lines.push(`${head}from ${x.resolution.from}`, `${' '.repeat(head.length)}to   ${x.resolution.to}`);
  }
  lines.push('');
  if (p.eventWindow && p.inEventWindow !== null) {
    lines.push(`event window  --event-from=${p.eventWindow.from}  --event-to=${p.eventWindow.to}  (event time, [from, to); only these entries are replayed)`);
    lines.push(`scanned       ${p.entries} entries in the log range: ${p.inEventWindow} in the event window, ${p.outsideEventWindow} outside it (read, not replayed), ${p.undecodable} undecodable`);
  }
  lines.push(`entries       ${p.entries}  (to insert ${p.toInsert}, already in ${p.target} or repeated ${p.duplicates}, undecodable ${p.undecodable}${p.eventWindow ? `, outside the event window ${p.outsideEventWindow}` : ''})`);
  if (!p.toInsertExact) lines.push(`              "to insert" is an upper bound: an entry logged twice far apart counts here once too often; the run skips it`);
  lines.push(`logged        ${p.logTime.first ?? '-'} → ${p.logTime.last ?? '-'}  (log append time)`);
  lines.push(`event time    ${p.eventTime.min ?? '-'} → ${p.eventTime.max ?? '-'}  (the ts column)`);
  lines.push(`event days    ${p.eventDays.map((d) => `${d.day} (${d.entries})`).join(', ') || '-'}  (UTC day partitions these entries land in)`);
  lines.push('', 'per tenant:');
  lines.push(indent(tenantsTable(p.tenants, (t) => ({ tenant: t.tenant, entries: t.entries, 'to insert': t.toInsert, duplicates: t.duplicates }))));
  lines.push('');
  if (!p.replayedBefore) lines.push(`replayed before: no (no recorded run into ${p.target} overlaps these offsets)`);
  else {
    lines.push(`replayed before: YES — earlier runs into ${p.target} overlap these offsets:`);
    lines.push(
      indent(
        table(
          p.previousRuns.map((r) => ({
            run: r.runId,
            started: new Date(r.startedAt).toISOString(),
            who: r.who,
            partition: r.partition,
            offsets: `${r.firstOffset}..${r.lastOffset}`,
            tenant: r.tenant || 'all',
            status: r.status,
            inserted: r.inserted,
          })),
        ),
      ),
    );
    lines.push(`  A new run skips what ${p.target} still holds ("duplicates" above) and inserts the rest.`);
  }
  return lines.join('\n');
}

export function formatSummary(s: Summary): string {
  const lines: string[] = [];
  const head = s.status === 'done' ? 'done' : s.status.toUpperCase();
  lines.push(`replay ${s.runId} ${head} in ${(s.durationMs / 1000).toFixed(1)} s → ${s.target}`);
  if (s.error) lines.push(`error: ${s.error}`);
  lines.push(`read ${s.read} · inserted ${s.inserted} · skipped as duplicates ${s.skippedDuplicates} · dead-lettered (undecodable, not inserted) ${s.deadLettered}${s.eventWindow ? ` · outside the event window (not replayed) ${s.outsideEventWindow}` : ''}`, '');
  lines.push(
    table(
      s.partitions.map((p) => ({
        partition: p.partition,
        'offsets (incl..incl)': p.firstOffset === null ? '(none)' : `${p.firstOffset}..${p.lastOffset}`,
        'done through': p.doneThrough ?? '-',
        read: p.read,
        inserted: p.inserted,
        skipped: p.skippedDuplicates,
        'dead-lettered': p.deadLettered,
      })),
    ),
  );
  lines.push('', 'per tenant:');
  lines.push(indent(tenantsTable(s.tenants, (t) => ({ tenant: t.tenant, read: t.read, inserted: t.inserted, skipped: t.skippedDuplicates }))));
  if (s.deadLetterSample.length > 0) {
    lines.push('', 'undecodable entries (first ones; all are in the audit log record):');
    for (const b of s.deadLetterSample) lines.push(`  partition ${b.partition} offset ${b.offset}: ${b.reason}`);
  }
  if (s.audit) lines.push('', `audit: ${s.audit.file}${s.audit.topic ? ` and topic ${s.audit.topic}` : ''}${s.audit.written.file && s.audit.written.topic !== false ? '' : ' (NOT fully written — see sink writer logs)'}`);
  if (s.eventDays.length > 0) lines.push(`next: ingestctl shadow diff ${s.eventDays.map((d) => `--day ${d.day}`).join(' ')}`);
  return lines.join('\n');
}

/** Progress on stderr: a bar on a terminal, a line every few seconds otherwise (logs, CI). */
class Progress {
  private bar: SingleBar | undefined;
  // Without a terminal, the first line comes after a few seconds: short jobs print none.
  private lastLine = Date.now();

  constructor(private readonly io: Io, private readonly label: string, total: number) {
    if (process.stderr.isTTY) {
      this.bar = new SingleBar(
        { format: `${label} |{bar}| {percentage}% | {value}/{total} entries | {rate}/s | ETA {etaText}`, hideCursor: true, stream: process.stderr },
        Presets.shades_classic,
      );
      this.bar.start(total, 0, { rate: 0, etaText: '?' });
    }
  }

  update(p: JobView['progress']): void {
    // ETA from the sink writer's own rate (entries since the job started), not the poll cadence.
    const eta = p.rate > 0 ? `${Math.ceil((p.total - p.done) / p.rate)}s` : '?';
    if (this.bar) {
      this.bar.setTotal(p.total);
      this.bar.update(p.done, { rate: p.rate, etaText: eta });
      return;
    }
    const now = Date.now();
    if (now - this.lastLine < 5000) return;
    this.lastLine = now;
    this.io.err(`${this.label}: ${p.done}/${p.total} entries (${p.total > 0 ? ((p.done / p.total) * 100).toFixed(0) : 100}%), ${p.rate}/s, ETA ${eta}`);
  }

  stop(): void {
    this.bar?.stop();
    this.bar = undefined;
  }
}

/** Polls a job until it ends, showing progress; the first Ctrl-C asks the sink writer to cancel it. */
export async function follow(io: Io, id: string, label: string): Promise<JobView> {
  let view: JobView | undefined;
  let progress: Progress | undefined;
  let interrupted = 0;
  const onSigint = () => {
    interrupted++;
    if (interrupted === 1) {
      io.err(`\ncancelling job ${id} after its current chunk (Ctrl-C again to stop watching; the job state stays on the sink writer)`);
      callSink(io, 'DELETE', `/admin/v1/replay/jobs/${encodeURIComponent(id)}`).catch((e: unknown) => io.err(`cancel failed: ${(e as Error).message}`));
    }
  };
  process.on('SIGINT', onSigint);
  try {
    for (;;) {
      const a = await callSink<JobView>(io, 'GET', `/admin/v1/replay/jobs/${encodeURIComponent(id)}`);
      if (a.status !== 200) throw new Error(a.body.error?.message ?? `HTTP ${a.status}`);
      view = a.body;
      progress ??= new Progress(io, label, view.progress.total);
      progress.update(view.progress);
      if (view.state !== 'running' || interrupted > 1) return view;
      await sleep(250);
    }
  } finally {
    progress?.stop();
    process.off('SIGINT', onSigint);
  }
}

function parsePartitions(raw: string[] | undefined): number[] | undefined {
  if (!raw || raw.length === 0) return undefined;
  return raw.flatMap((r) => r.split(',')).map((s) => {
    const t = s.trim();
    if (!/^\d+$/.test(t)) throw new UsageError(`--partition=${s} is not a partition number`);
    return Number(t);
  });
}

export type ReplayCli =
  | { kind: 'help' }
  | { kind: 'jobs'; json: boolean }
  | { kind: 'cancel'; id: string; json: boolean }
  | { kind: 'watch'; id: string; json: boolean }
  | { kind: 'start'; json: boolean; body: Record<string, unknown> };

/** Options → what the CLI does and sends: pure, so option handling is unit-tested without a server. */
export function replayRequest(argv: string[], env: Io['env']): ReplayCli {
  const { values } = parse(argv, {
    from: { type: 'string' },
    to: { type: 'string' },
    shadow: { type: 'boolean' },
    partition: { type: 'string', multiple: true },
    tenant: { type: 'string' },
    table: { type: 'string' },
    yes: { type: 'boolean' },
    watch: { type: 'string' },
    cancel: { type: 'string' },
    jobs: { type: 'boolean' },
    'event-from': { type: 'string' },
    'event-to': { type: 'string' },
  });
  if (values.help) return { kind: 'help' };
  const json = values.json === true;
  if (values.watch !== undefined) return { kind: 'watch', id: values.watch, json };
  if (values.cancel !== undefined) return { kind: 'cancel', id: values.cancel, json };
  if (values.jobs) return { kind: 'jobs', json };
  if (!values.shadow) throw new UsageError('replay writes only to a shadow table and says so explicitly: add --shadow');
  const eventFrom = values['event-from'];
  const eventTo = values['event-to'];
  const byEvent = eventFrom !== undefined || eventTo !== undefined;
  if (byEvent && (eventFrom === undefined || eventTo === undefined || eventFrom === '' || eventTo === '')) throw new UsageError('--event-from and --event-to go together: give both');
  // With an event window the log range defaults to everything retained: entries of any event time
  // may have been logged at any point, and the filter keeps only the window's.
  const from = values.from ?? (byEvent ? 'earliest' : undefined);
  const to = values.to ?? (byEvent ? 'latest' : undefined);
  if (from === undefined || from === '') throw new UsageError('replay needs --from (an offset, an ISO-8601 time with a zone, or earliest), or --event-from/--event-to');
  if (to === undefined || to === '') throw new UsageError('replay needs --to (an offset, an ISO-8601 time with a zone, or latest), or --event-from/--event-to');
  const partitions = parsePartitions(values.partition);
  return {
    kind: 'start',
    json,
    body: {
      mode: values.yes ? 'run' : 'plan',
      from,
      to,
      ...(byEvent ? { eventFrom, eventTo } : {}),
      ...(partitions ? { partitions } : {}),
      ...(values.tenant !== undefined ? { tenant: values.tenant } : {}),
      ...(values.table !== undefined ? { target: values.table } : {}),
      who: whoAmI(env),
      args: ['replay', ...argv],
    },
  };
}

const NOTHING_IN_EVENT_WINDOW = 'none of the scanned log entries has an event time in --event-from/--event-to: nothing to replay. Widen --from/--to (the log range scanned) or check the event window (UTC).';
const NOTHING = 'the window holds no log entries (of this tenant): nothing to replay. Check --from/--to against the plan\'s RETAINED and LOGGED columns (times are log append times, UTC).';

export function printJob(io: Io, v: JobView, json: boolean): ExitCode {
  if (v.kind === 'plan') {
    if (v.state !== 'done' || !v.plan) {
      io.err(`planning ${v.state}: ${v.error ?? 'no plan'}`);
      return EXIT.FAILED;
    }
    io.out(json ? JSON.stringify(v.plan) : formatPlan(v.plan));
    // A plan of nothing is not a green light: a script would go on to "repair" nothing.
    if (v.plan.entries === 0) {
      io.err(NOTHING);
      return EXIT.CHECK_FAILED;
    }
    if (v.plan.inEventWindow === 0) {
      io.err(NOTHING_IN_EVENT_WINDOW);
      return EXIT.CHECK_FAILED;
    }
    return EXIT.OK;
  }
  if (v.summary) io.out(json ? JSON.stringify(v.summary) : formatSummary(v.summary));
  else io.err(`replay ${v.id} ${v.state}: ${v.error ?? ''}`);
  if (v.state !== 'done') return EXIT.FAILED;
  if (v.summary?.read === 0) {
    io.err(NOTHING);
    return EXIT.CHECK_FAILED;
  }
  return EXIT.OK;
}

export const replay: Command = {
  name: 'replay',
  summary: 'replay a window of the log into the shadow table (plan first)',
  help: HELP,
  async run(argv, io) {
    const req = replayRequest(argv, io.env);
    if (req.kind === 'help') {
      io.out(HELP);
      return EXIT.OK;
    }
    try {
      switch (req.kind) {
        case 'jobs': {
          const a = await callSink<{ jobs: JobView[] }>(io, 'GET', '/admin/v1/replay/jobs');
          if (a.status !== 200) return failure(io, 'listing jobs failed', a);
          if (req.json) io.out(JSON.stringify(a.body));
          else
            io.out(
              table(
                a.body.jobs.map((j) => ({
                  job: j.id,
                  kind: j.kind,
                  state: j.state,
                  who: j.who,
                  started: j.progress.startedAt,
                  progress: `${j.progress.done}/${j.progress.total}`,
                  inserted: j.summary?.inserted ?? '-',
                })),
              ),
            );
          return EXIT.OK;
        }
        case 'cancel': {
          const a = await callSink<JobView>(io, 'DELETE', `/admin/v1/replay/jobs/${encodeURIComponent(req.id)}`);
          if (a.status !== 200) return failure(io, 'cancel failed', a);
          io.out(req.json ? JSON.stringify(a.body) : `job ${a.body.id}: ${a.body.state === 'running' ? 'cancelling after its current chunk' : a.body.state}`);
          return EXIT.OK;
        }
        case 'watch':
          return printJob(io, await follow(io, req.id, 'replay'), req.json);
        case 'start': {
          const a = await callSink<JobView>(io, 'POST', '/admin/v1/replay/jobs', req.body);
          if (a.status !== 202) return failure(io, 'replay refused', a);
          const started = a.body;
          if (started.kind === 'run' && !req.json) {
            io.err(`replay job ${started.id}: ${started.resolved.offsets} offsets of ${started.resolved.topic} → ${started.resolved.target} (follow from elsewhere: ingestctl replay --watch ${started.id})`);
            for (const p of started.resolved.partitions) io.err(`  partition ${p.partition}: ${p.offsets > 0 ? `${p.first}..${p.last} (both included)` : 'nothing in the window'}`);
          }
          return printJob(io, await follow(io, started.id, started.kind === 'plan' ? 'planning' : 'replay'), req.json);
        }
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
