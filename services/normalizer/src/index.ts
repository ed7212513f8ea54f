export { buildNormalizer } from './app.ts';
export type { NormalizerOptions, NormalizerApp } from './app.ts';
