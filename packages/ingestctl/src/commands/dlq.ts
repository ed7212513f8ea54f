import { writeFile } from 'node:fs/promises';
import { ERROR_CATALOG, isErrorCode } from '@ingest/contracts';
import { parse, parseWhen, table, UsageError, type Command, type Io } from '../cli.ts';
import { EXIT, type ExitCode } from '../exit-codes.ts';
import { callSink, failure } from './replay.ts';
import { intFlag, terminalWidth } from './read.ts';

const HELP = `ingestctl dlq — the dead letters: entries the service refused, with their reason

  ingestctl dlq list [--tenant <id>] [--reason INGEST_ERR_…] [--from T] [--to T] [--limit 100] [--json | --ndjson]
  ingestctl dlq show <partition>:<offset> [--json]
  ingestctl dlq export [same filters] [--limit 10000] [--out file.ndjson]

list prints each refused entry's time (when it was received), tenant, reason code, place in the
dead-letter topic and message, in log order. show prints one in full, with the entry as it was
sent. export writes the refused entries themselves, one JSON object per line (NDJSON), to --out or
stdout: fix them and send the file back with
  curl -H "Authorization: Bearer $KEY" -H 'content-type: application/x-ndjson' --data-binary @file.ndjson $EDGE/v2/ingest
Entries cut short when they were dead-lettered (the raw text is bounded) cannot be resent; export
counts them on stderr with their place. T is RFC 3339 with a zone, a UTC date, now, or relative
(--from=-2h). Reads go through the sink writer (SINK_URL), which scans at most 100,000 dead letters
per request and continues where it stopped.`;

interface Letter {
  partition: number;
  offset: number;
  tenant: string;
  index: number;
  code: string;
  message: string;
  receivedAt: number;
  raw: string;
}
interface Page {
  topic: string;
  deadLetters: Letter[];
  next: string | null;
  scanned: number;
}

/** Pages a request may follow before giving up on filling --limit (each scans at most 100,000). */
const MAX_PAGES = 50;

async function collect(io: Io, values: { tenant?: string | undefined; reason?: string | undefined; from?: string | undefined; to?: string | undefined }, limit: number): Promise<{ letters: Letter[]; more: boolean; topic: string } | ExitCode> {
  const qs = new URLSearchParams();
  const now = Date.now();
  if (values.tenant) qs.set('tenant', values.tenant);
  if (values.reason !== undefined) {
    if (!isErrorCode(values.reason)) {
      const entryCodes = Object.entries(ERROR_CATALOG).filter(([, c]) => c.scope === 'entry').map(([k]) => k);
      throw new UsageError(`--reason ${values.reason} is not an error code; dead letters carry ${entryCodes.join(', ')}`);
    }
    qs.set('reason', values.reason);
  }
  if (values.from !== undefined) qs.set('from', String(parseWhen(values.from, now, '--from')));
  if (values.to !== undefined) qs.set('to', String(parseWhen(values.to, now, '--to')));
  const letters: Letter[] = [];
  let cursor: string | null = null;
  let topic = '';
  for (let i = 0; i < MAX_PAGES; i++) {
    const p = new URLSearchParams(qs);
    p.set('limit', String(limit - letters.length));
    if (cursor) p.set('cursor', cursor);
    const a = await callSink<Page>(io, 'GET', `/admin/v1/dlq?${p.toString()}`, undefined, 60_000);
    if (a.status !== 200) return failure(io, 'dlq failed', a);
    topic = a.body.topic;
    letters.push(...a.body.deadLetters);
    cursor = a.body.next;
    if (cursor === null || letters.length >= limit) break;
  }
  return { letters, more: cursor !== null, topic };
}

const FILTERS = { tenant: { type: 'string' }, reason: { type: 'string' }, from: { type: 'string' }, to: { type: 'string' }, limit: { type: 'string' }, out: { type: 'string' }, ndjson: { type: 'boolean' } } as const;

export const dlq: Command = {
  name: 'dlq',
  summary: 'list, show and export refused entries (reason, time, tenant)',
  help: HELP,
  async run(argv, io) {
    const { values, positionals } = parse(argv, FILTERS);
    if (values.help) {
      io.out(HELP);
      return EXIT.OK;
    }
    const [sub, ...rest] = positionals;
    switch (sub) {
      case 'list': {
        const got = await collect(io, values, intFlag(values.limit, 'limit', 100, 1, 10_000));
        if (typeof got === 'number') return got;
        if (values.json) io.out(JSON.stringify({ topic: got.topic, deadLetters: got.letters, more: got.more }));
        else if (values.ndjson) for (const l of got.letters) io.out(JSON.stringify(l));
        else {
          const w = terminalWidth(io);
          const rows = got.letters.map((l) => ({ time: new Date(l.receivedAt).toISOString(), tenant: l.tenant, reason: l.code, at: `${l.partition}:${l.offset}`, message: l.message }));
          const fixed = rows.reduce((m, r) => Math.max(m, r.time.length + r.tenant.length + r.reason.length + r.at.length + 8), 0);
          const room = Math.max(20, w - fixed);
          io.out(table(rows.map((r) => ({ ...r, message: r.message.length > room ? `${r.message.slice(0, room - 1)}…` : r.message }))));
          if (got.more) io.out(`more dead letters match: raise --limit, or narrow with --from/--to`);
        }
        return EXIT.OK;
      }
      case 'show': {
        const at = rest[0];
        if (!at || !/^\d+:\d+$/.test(at)) throw new UsageError('dlq show needs <partition>:<offset>, as dlq list prints it');
        const a = await callSink<Page>(io, 'GET', `/admin/v1/dlq?at=${encodeURIComponent(at)}`, undefined, 30_000);
        if (a.status !== 200) return failure(io, 'dlq failed', a);
        const l = a.body.deadLetters[0];
        if (!l) {
          io.err(`no dead letter at ${at} in ${a.body.topic}`);
          return EXIT.CHECK_FAILED;
        }
        if (values.json) io.out(JSON.stringify(l));
        else {
          let entry = l.raw;
          try {
            entry = JSON.stringify(JSON.parse(l.raw), null, 2);
          } catch {
            entry = `${l.raw} (cut short when dead-lettered)`;
          }
          io.out([`at:        ${a.body.topic} ${l.partition}:${l.offset}`, `tenant:    ${l.tenant}`, `received:  ${new Date(l.receivedAt).toISOString()}`, `reason:    ${l.code}`, `message:   ${l.message}`, `index:     ${l.index} (its place in the request)`, `entry:`, entry].join('\n'));
        }
        return EXIT.OK;
      }
      case 'export': {
        // Held in memory before writing: bounded like a page of the API, times ten.
        const got = await collect(io, values, intFlag(values.limit, 'limit', 10_000, 1, 100_000));
        if (typeof got === 'number') return got;
        const lines: string[] = [];
        const cut: string[] = [];
        for (const l of got.letters) {
          try {
            lines.push(JSON.stringify(JSON.parse(l.raw)));
          } catch {
            cut.push(`${l.partition}:${l.offset}`);
          }
        }
        const text = lines.length ? `${lines.join('\n')}\n` : '';
        if (values.out) await writeFile(values.out, text);
        else if (text) io.out(text.trimEnd());
        io.err(`exported ${lines.length} entr${lines.length === 1 ? 'y' : 'ies'}${values.out ? ` to ${values.out}` : ''}${cut.length ? `; ${cut.length} cut short, not resendable: ${cut.slice(0, 20).join(' ')}${cut.length > 20 ? ' …' : ''}` : ''}${got.more ? '; more match (raise --limit)' : ''}`);
        return EXIT.OK;
      }
      default:
        throw new UsageError(sub ? `unknown dlq command "${sub}": use list, show or export` : 'dlq needs a command: list, show or export');
    }
  },
};
