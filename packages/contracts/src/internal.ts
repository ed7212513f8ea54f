import type { DeadLetter, NormalizedEntry } from './entry.ts';

/** Internal routes between the services. Not public API; versioned with the services. */
export const ROUTES = {
  normalize: '/internal/v2/normalize',
  write: '/internal/v2/write',
} as const;

/** Headers that travel edge → normalizer → sink writer → log. */
export const HEADERS = {
  tenant: 'x-ingest-tenant',
  version: 'x-ingest-version',
  traceparent: 'traceparent',
  /** Shared secret between our own services (and ingestctl) for /internal and /admin routes. */
  internalToken: 'x-ingest-internal-token',
} as const;

/**
 * Ingest versions the edge stamps on a request. A mirror copy (cutover mirror mode) travels the v2
 * path but is written to the mirror topic and table only, never live.
 */
export const INGEST_VERSIONS = { live: 'v2', mirror: 'v2-mirror' } as const;

/** Edge → normalizer. `entries` are as parsed from the producer's body, not yet trusted. */
export interface NormalizeRequest {
  tenant: string;
  receivedAt: number;
  entries: unknown[];
}

/** Normalizer → sink writer. */
export interface WriteRequest {
  tenant: string;
  entries: NormalizedEntry[];
  deadLetters: DeadLetter[];
}

export interface WriteResult {
  accepted: number;
  deadLettered: number;
}
