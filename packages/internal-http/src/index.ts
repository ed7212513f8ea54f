export { HopClient } from './client.ts';
export type { HopOptions } from './client.ts';
export { JsonText, jsonKeepingInfinity } from './json-text.ts';
export { HttpNormalizeHop, HttpWriteHop, HttpQueryHop, splitWriteBody, inProcessStage } from './hops.ts';
export { readTlsMaterial, TlsReloader, serveTls } from './tls.ts';
export type { ServerTlsFiles, TlsMaterial, SecureContextTarget, TlsReloaderEvents } from './tls.ts';
