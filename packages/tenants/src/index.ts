export { generateApiKey, hashApiKey, keyPrefix, keyMatches } from './keys.ts';
export { readTenants, writeTenants, addTenantKey, revokeTenantKey, validTenantId } from './file.ts';
export { PolledFile, fileVersion } from './polled-file.ts';
export type { TenantLimits, StoredKey, TenantRecord, TenantsDoc } from './file.ts';
export {
  CUTOVER_STATES,
  cutoverActive,
  CutoverConflictError,
  emptyCutover,
  parseCutover,
  readCutover,
  readCutoverFile,
  routeOf,
  setTenantRoute,
  withCutoverSnapshot,
  routeMapEntries,
  renderNginxMap,
  renderEnvoyRoutes,
} from './cutover.ts';
export type { CutoverState, TenantRoute, CutoverEntry, CutoverDoc, CutoverFiles, CutoverChange, RouteMapEntry, RenderedNginx, EnvoyRenderOptions } from './cutover.ts';
