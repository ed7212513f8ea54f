export { HopClient } from './client.ts';
export type { HopOptions } from './client.ts';
export { JsonText, jsonKeepingInfinity } from './json-text.ts';
export { HttpNormalizeHop, HttpWriteHop, HttpQueryHop, splitWriteBody, inProcessStage } from './hops.ts';
