export { runCli } from './main.ts';
export type { Io } from './cli.ts';
