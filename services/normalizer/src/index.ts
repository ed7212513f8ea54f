export { buildNormalizer } from './app.ts';
export type { NormalizerOptions } from './app.ts';
