/**
 * The one exit-code table of ingestctl. Scripts gate on these numbers (`ingestctl cutover status
 * acme && ingestctl cutover add acme`), so every command returns one of them and nothing else; the
 * brand makes a bare number a type error, and exit-codes.test.ts checks the sources for literals.
 * The table is printed by `ingestctl --help` and copied verbatim into README.md and runbooks/.
 */
declare const brand: unique symbol;
export type ExitCode = number & { readonly [brand]: 'ExitCode' };

const code = (n: number): ExitCode => n as ExitCode;

export const EXIT = {
  /** Done, or the check passed. */
  OK: code(0),
  /** A check failed, or the command refused to act; nothing was changed. */
  CHECK_FAILED: code(1),
  /** Bad arguments or configuration. */
  USAGE: code(2),
  /** A service the command needs did not answer. */
  UNREACHABLE: code(3),
  /** The command started and did not complete, or failed unexpectedly. */
  FAILED: code(4),
} as const;

export type ExitName = keyof typeof EXIT;

/**
 * The exit code for a service's refusal, by HTTP status: 400 names something asked wrongly and 401
 * a missing or wrong INGEST_INTERNAL_TOKEN (both the operator's to fix: usage/configuration), 409 a
 * refusal that changed nothing, 502–504 a service that is not there to answer; anything else failed.
 */
export function exitForStatus(status: number): ExitCode {
  if (status === 400 || status === 401 || status === 403) return EXIT.USAGE;
  if (status === 409) return EXIT.CHECK_FAILED;
  if (status === 502 || status === 503 || status === 504) return EXIT.UNREACHABLE;
  return EXIT.FAILED;
}

/** What each code means to an operator, with examples; one row per code, in code order. */
export const EXIT_MEANINGS: ReadonlyArray<{ name: ExitName; code: ExitCode; meaning: string }> = [
  { name: 'OK', code: EXIT.OK, meaning: 'done; or the check passed (parity OK, in sync, plan can be applied)' },
  {
    name: 'CHECK_FAILED',
    code: EXIT.CHECK_FAILED,
    meaning: 'a check failed or was not possible, or the command refused; nothing changed (parity MISMATCH or not checked, not in sync, a promote or cutover plan that would be refused, a replay window with no entries)',
  },
  { name: 'USAGE', code: EXIT.USAGE, meaning: 'bad arguments or configuration (unknown flag, --from after --to, offsets outside the log); the command did nothing' },
  { name: 'UNREACHABLE', code: EXIT.UNREACHABLE, meaning: 'a service did not answer (sink writer, edge, nginx, LEGACY_COUNT_URL)' },
  { name: 'FAILED', code: EXIT.FAILED, meaning: 'started but did not complete (replay FAILED or CANCELLED, nginx did not reload, edges did not catch up), or an unexpected error' },
];

/** The table as `--help` prints it. */
export function exitCodeHelp(): string {
  return ['Exit codes (every command):', ...EXIT_MEANINGS.map((e) => `  ${e.code}  ${e.name.padEnd(12)} ${e.meaning}`)].join('\n');
}

/** The table as README.md and the runbooks carry it (a test keeps their copies identical). */
export function exitCodeMarkdown(): string {
  return ['| exit | name | meaning |', '|---|---|---|', ...EXIT_MEANINGS.map((e) => `| ${e.code} | \`${e.name}\` | ${e.meaning} |`)].join('\n');
}
