import { setTimeout as sleep } from 'node:timers/promises';
import type { QueryPage, StoredEntry } from '@ingest/contracts';
import { encodeCursor } from '@ingest/storage';
import { parse, parseDuration, UsageError, type Command } from '../cli.ts';
import { EXIT } from '../exit-codes.ts';
import { callSink, failure } from './replay.ts';
import { entryRows, filterParams, FILTER_HELP, FILTER_OPTIONS, intFlag, terminalWidth } from './read.ts';

const HELP = `ingestctl tail — follow a tenant's new entries until Ctrl-C

  ingestctl tail --tenant <id> [filters] [-n 10] [--interval 1s] [--json | --ndjson]

Prints the last -n matching entries (default 10, 0 for none), then every newer one as it is loaded,
oldest first, polling the sink writer every --interval (default 1s). "Newer" is by event time: an
entry stamped earlier than the last one printed (a producer's late batch) is not shown; use
ingestctl query --from for those. --json and --ndjson print one entry per line as JSON.
${FILTER_HELP.replace('--from T, --to T (RFC 3339 with a zone, a UTC date, now, or relative: --from=-15m),\n', '')}`;

/** Entries per poll; a poll that fills it is followed at once by the next, without waiting. */
const POLL_LIMIT = 1000;

const keyOf = (e: StoredEntry) => encodeCursor({ tsMs: Date.parse(e.timestamp), id: e.id, type: e.type });

export const tail: Command = {
  name: 'tail',
  summary: 'follow new entries of a tenant (same filters as query) until Ctrl-C',
  help: HELP,
  async run(argv, io) {
    const { values } = parse(argv, { ...FILTER_OPTIONS, n: { type: 'string', short: 'n' }, interval: { type: 'string' }, ndjson: { type: 'boolean' } });
    if (values.help) {
      io.out(HELP);
      return EXIT.OK;
    }
    if (values.from !== undefined || values.to !== undefined) throw new UsageError('tail follows from now: --from and --to go with ingestctl query');
    const qs = filterParams(values, Date.now());
    const lines = intFlag(values.n, 'n', 10, 0, 1000);
    const intervalMs = values.interval === undefined ? 1000 : parseDuration(values.interval);
    if (intervalMs < 100 || intervalMs > 3_600_000) throw new UsageError(`--interval ${values.interval}: from 1s to 1h`);
    const asJson = values.json === true || values.ndjson === true;
    const width = terminalWidth(io);
    let headerDone = false;
    const print = (es: StoredEntry[]) => {
      if (es.length === 0) return;
      if (asJson) {
        for (const e of es) io.out(JSON.stringify(e));
        return;
      }
      const rows = entryRows(es, width, !headerDone);
      headerDone = true;
      io.out(rows.join('\n'));
    };
    const get = (params: URLSearchParams) => callSink<QueryPage>(io, 'GET', `/admin/v1/query?${params.toString()}`, undefined, 60_000);

    // Where following starts: after the newest entry shown, or (none shown) at the time tail started.
    let cursor: string | undefined;
    const startedAt = Date.now();
    if (lines > 0) {
      const first = await get(new URLSearchParams([...qs, ['limit', String(lines)]]));
      if (first.status !== 200) return failure(io, 'tail failed', first);
      const newestFirst = first.body.entries;
      print([...newestFirst].reverse());
      if (newestFirst[0]) cursor = keyOf(newestFirst[0]);
    }
    while (!io.signal?.aborted) {
      const p = new URLSearchParams([...qs, ['order', 'asc'], ['limit', String(POLL_LIMIT)]]);
      if (cursor !== undefined) p.set('cursor', cursor);
      else p.set('from', String(startedAt));
      const a = await get(p);
      if (a.status !== 200) return failure(io, 'tail failed', a);
      print(a.body.entries);
      const last = a.body.entries[a.body.entries.length - 1];
      if (last) cursor = keyOf(last);
      if (a.body.next !== null) continue;
      try {
        await sleep(intervalMs, undefined, io.signal ? { signal: io.signal } : {});
      } catch {
        break;
      }
    }
    return EXIT.OK;
  },
};
