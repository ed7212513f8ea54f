import { ConfigError, takeConfigFlag, withConfigFile, withRunningEndpoints } from '@ingest/config';
import { UnreachableError, UsageError, type Command, type Io } from './cli.ts';
import { EXIT, exitCodeHelp, type ExitCode } from './exit-codes.ts';
import { query } from './commands/query.ts';
import { status } from './commands/status.ts';
import { tenants } from './commands/tenants.ts';
import { cutover } from './commands/cutover.ts';
import { replay } from './commands/replay.ts';
import { shadow } from './commands/shadow.ts';
import { sql } from './commands/sql.ts';
import { tail } from './commands/tail.ts';
import { dlq } from './commands/dlq.ts';

const COMMANDS: Command[] = [tenants, query, tail, dlq, sql, status, cutover, replay, shadow];

function usage(): string {
  return `ingestctl — operate the telemetry ingest service

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(10)} ${c.summary}`).join('\n')}

Every command takes --help and --json, and --config <file>: a file of KEY=value lines with the
same variables as the environment (which wins over it); INGEST_CONFIG names it too. pnpm start
--config <file> reads the same file. While it runs, pnpm start writes where each service listens to
$INGEST_DATA_DIR/endpoints.env, which ingestctl reads last, so a product started on other ports is
found without flags.

${exitCodeHelp()}`;
}

export async function runCli(argvIn: string[], ioIn: Io): Promise<ExitCode> {
  // One configuration with `pnpm start`: the environment over the optional file (--config or INGEST_CONFIG).
  let argv: string[];
  let io: Io;
  try {
    const taken = takeConfigFlag(argvIn);
    argv = taken.argv;
    io = { ...ioIn, env: withRunningEndpoints(withConfigFile(ioIn.env, taken.file ?? ioIn.env['INGEST_CONFIG'])) };
  } catch (e) {
    ioIn.err((e as Error).message);
    return EXIT.USAGE;
  }
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    io.out(usage());
    return name ? EXIT.OK : EXIT.USAGE;
  }
  const cmd = COMMANDS.find((c) => c.name === name);
  if (!cmd) {
    io.err(`unknown command "${name}"\n\n${usage()}`);
    return EXIT.USAGE;
  }
  try {
    return await cmd.run(rest, io);
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`${e.message}\n\n${cmd.help}`);
      return EXIT.USAGE;
    }
    if (e instanceof ConfigError) {
      io.err(e.message);
      return EXIT.USAGE;
    }
    if (e instanceof UnreachableError) {
      io.err(`ingestctl ${name}: ${e.message}`);
      return EXIT.UNREACHABLE;
    }
    io.err(`ingestctl ${name}: ${(e as Error).message}`);
    return EXIT.FAILED;
  }
}

// Run only when executed, not when imported by tests.
if (process.argv[1] && /ingestctl([\\/]src[\\/]main\.ts|[\\/]bin[\\/]ingestctl(\.js)?)$/.test(process.argv[1])) {
  // Only a command that runs until stopped (tail) takes Ctrl-C as "stop and exit 0"; the others die by it as usual.
  const stop = new AbortController();
  if (process.argv[2] === 'tail') process.once('SIGINT', () => stop.abort());
  const io: Io = { out: (s) => console.log(s), err: (s) => console.error(s), env: process.env, signal: stop.signal };
  runCli(process.argv.slice(2), io).then(
    (code) => process.exit(code),
    (e: unknown) => {
      console.error(e);
      process.exit(EXIT.FAILED);
    },
  );
}
