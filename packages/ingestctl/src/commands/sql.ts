import type { ReadOnlyResult } from '@ingest/storage';
import { parse, table, UsageError, type Command } from '../cli.ts';
import { EXIT } from '../exit-codes.ts';
import { callSink } from './replay.ts';

const HELP = `ingestctl sql — run one read-only SQL statement while the product runs

  ingestctl sql "SELECT …" [--json | --ndjson]

Runs on the sink writer (POST /admin/v1/sql; it owns the embedded chDB session, and in the
distributed deployment talks to the same ClickHouse), so it works on both deployments without
stopping anything. Only a SELECT (or WITH … SELECT) runs, as a subquery with readonly=1: INSERT,
ALTER, DROP, CREATE, TRUNCATE, SET, a second statement after ";" and functions that reach outside
the database (file(), url(), s3(), remote(), …) are refused (INGEST_ERR_SQL_REFUSED, exit 1).
For tables and columns: SELECT … FROM system.tables / system.columns. Limits: 30 s, 1 GiB of memory, 10,000 rows or
16 MiB of result; a longer result is cut and says so.

Output: a table; --json: {"columns":[{"name","type"}],"rows":[[…]],"truncated":bool,"elapsedMs"};
--ndjson: one JSON object per row (column name → value). 64-bit integers arrive as strings, as
ClickHouse sends them.

Exit codes: 0 ran; 1 refused (a write, or a function outside the database); 2 no statement, or
ClickHouse rejected it (syntax, unknown table, a limit): the message is ClickHouse's; 3 sink writer
unreachable; 4 anything else. INGEST_INTERNAL_TOKEN is sent when set.`;

/** The sink writer answers with the store's result as JSON, unchanged. */
type SqlAnswer = ReadOnlyResult;

const cell = (v: unknown): string => (v === null ? 'NULL' : typeof v === 'string' ? v : JSON.stringify(v));

export const sql: Command = {
  name: 'sql',
  summary: 'run one read-only SQL statement (SELECT, SHOW, DESCRIBE, EXPLAIN)',
  help: HELP,
  async run(argv, io) {
    const { values, positionals } = parse(argv, { ndjson: { type: 'boolean' } });
    if (values.help) {
      io.out(HELP);
      return EXIT.OK;
    }
    if (positionals.length !== 1 || positionals[0]?.trim() === '') throw new UsageError('give the statement as one argument, in quotes: ingestctl sql "SELECT count() FROM telemetry"');
    if (values.json && values.ndjson) throw new UsageError('--json and --ndjson: pick one');
    const a = await callSink<SqlAnswer>(io, 'POST', '/admin/v1/sql', { sql: positionals[0] }, 60_000);
    if (a.status !== 200) {
      const msg = a.body.error?.message ?? `HTTP ${a.status}`;
      io.err(`ingestctl sql: ${a.body.error?.code ?? 'ERROR'}: ${msg}`);
      if (a.body.error?.code === 'INGEST_ERR_SQL_REFUSED') return EXIT.CHECK_FAILED;
      return a.status === 400 ? EXIT.USAGE : EXIT.FAILED;
    }
    const r = a.body;
    if (values.json) io.out(JSON.stringify(r));
    else if (values.ndjson) {
      for (const row of r.rows) io.out(JSON.stringify(Object.fromEntries(r.columns.map((c, i) => [c.name, row[i]]))));
    } else {
      // Names may repeat (SELECT 1, 1) and table() keys on them: a repeat gets its position appended.
      const keys = r.columns.map((c, i) => (r.columns.findIndex((d) => d.name === c.name) === i ? c.name : `${c.name}#${i}`));
      const rows = r.rows.map((row) => Object.fromEntries(keys.map((k, i) => [k, cell(row[i])])));
      io.out(r.rows.length === 0 ? `(no rows; columns: ${r.columns.map((c) => c.name).join(', ')})` : table(rows));
      io.out(`${r.rows.length} row${r.rows.length === 1 ? '' : 's'} in ${r.elapsedMs} ms${r.truncated ? ' (TRUNCATED at the row/byte limit: add LIMIT or aggregate)' : ''}`);
    }
    if (r.truncated && (values.json || values.ndjson)) io.err('ingestctl sql: result truncated at the row/byte limit');
    return EXIT.OK;
  },
};
