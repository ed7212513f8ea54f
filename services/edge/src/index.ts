export { buildEdge } from './app.ts';
export type { EdgeOptions } from './app.ts';
