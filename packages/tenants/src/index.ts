export { generateApiKey, hashApiKey, keyPrefix, keyMatches } from './keys.ts';
export { readTenants, writeTenants, tenantsFileVersion, addTenantKey, revokeTenantKey, validTenantId } from './file.ts';
export type { TenantLimits, StoredKey, TenantRecord, TenantsDoc } from './file.ts';
