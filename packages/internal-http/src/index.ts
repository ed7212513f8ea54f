export { HopClient } from './client.ts';
export type { HopOptions } from './client.ts';
