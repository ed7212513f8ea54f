export { runCli } from './main.ts';
export type { Io } from './cli.ts';
export { EXIT, EXIT_MEANINGS, exitCodeMarkdown, type ExitCode } from './exit-codes.ts';
