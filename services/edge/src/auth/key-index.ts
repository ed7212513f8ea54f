import { PolledFile, keyMatches, keyPrefix, readTenants, type TenantLimits, type TenantsDoc } from '@ingest/tenants';

export interface Principal {
  tenant: string;
  limits: TenantLimits;
}

interface IndexedKey {
  tenant: string;
  sha256: string;
}

/**
 * API key → tenant, rebuilt from the tenants file whenever it changes (polled each `reloadMs`, so
 * a new or revoked key takes effect within that without a restart). Lookup is by the key's public
 * prefix, then a constant-time hash comparison.
 */
export class KeyIndex {
  private byPrefix = new Map<string, IndexedKey[]>();
  private limits = new Map<string, TenantLimits>();
  private readonly file: PolledFile<TenantsDoc>;

  constructor(file: string, reloadMs = 1000) {
    this.file = new PolledFile(file, reloadMs, readTenants, (doc) => this.apply(doc));
  }

  start(): Promise<void> {
    return this.file.start();
  }

  /** Re-reads the file if it changed; a broken file keeps the last good index. */
  reload(): Promise<void> {
    return this.file.reload();
  }

  get lastError(): string | undefined {
    return this.file.lastError;
  }

  private apply(doc: TenantsDoc): void {
    const byPrefix = new Map<string, IndexedKey[]>();
    const limits = new Map<string, TenantLimits>();
    for (const [tenant, rec] of Object.entries(doc.tenants)) {
      limits.set(tenant, rec.limits ?? {});
      for (const k of rec.keys) {
        if (k.revokedAt !== null) continue;
        const list = byPrefix.get(k.prefix) ?? [];
        list.push({ tenant, sha256: k.sha256 });
        byPrefix.set(k.prefix, list);
      }
    }
    this.byPrefix = byPrefix;
    this.limits = limits;
  }

  authenticate(apiKey: string): Principal | undefined {
    const prefix = keyPrefix(apiKey);
    if (!prefix) return undefined;
    const candidates = this.byPrefix.get(prefix);
    if (!candidates) return undefined;
    for (const c of candidates) {
      if (keyMatches(apiKey, c.sha256)) return { tenant: c.tenant, limits: this.limits.get(c.tenant) ?? {} };
    }
    return undefined;
  }

  tenantCount(): number {
    return this.limits.size;
  }

  close(): void {
    this.file.close();
  }
}

/** The bearer token of an Authorization header, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m?.[1];
}

/** The routes whose clients send the key another way than `Authorization: Bearer` (Influx's). */
const INFLUX_V2_ROUTE = '/api/v2/write';
const INFLUX_V1_ROUTE = '/write';

/**
 * The API key of a request, read the way the matched route's clients send it: Bearer everywhere;
 * also `Authorization: Token <key>` on the Influx write routes, and on the Influx 1.x route Basic
 * (the password is the key) or the `p` query parameter. Decided on the route the router matched
 * (`route`), never on the URL as spelled, so no other route accepts these forms.
 */
export function credentialFor(route: string | undefined, authorization: string | undefined, query: unknown): string | undefined {
  const bearer = bearerToken(authorization);
  if (bearer !== undefined || (route !== INFLUX_V2_ROUTE && route !== INFLUX_V1_ROUTE)) return bearer;
  const token = /^Token\s+(\S+)\s*$/i.exec(authorization ?? '')?.[1];
  if (token !== undefined || route !== INFLUX_V1_ROUTE) return token;
  const basic = /^Basic\s+(\S+)\s*$/i.exec(authorization ?? '')?.[1];
  if (basic !== undefined) {
    const decoded = Buffer.from(basic, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const password = colon < 0 ? '' : decoded.slice(colon + 1);
    return password === '' ? undefined : password;
  }
  const p = query !== null && typeof query === 'object' ? (query as Record<string, unknown>).p : undefined;
  return typeof p === 'string' && p !== '' ? p : undefined;
}
