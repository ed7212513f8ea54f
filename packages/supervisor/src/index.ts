export { startService, startStack, freePort, REPO_ROOT } from './supervisor.ts';
export type { ServiceName, ServiceProcess, StartOptions, Stack, StackOptions } from './supervisor.ts';
export { serveUntilSignal, runMain } from './serve.ts';
