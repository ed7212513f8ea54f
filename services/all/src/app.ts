import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import type { IngestConfig } from '@ingest/config';
import type { LoggingOptions } from '@ingest/observability';
import { buildEdge, type EdgeOptions } from '@ingest/edge';
import { buildNormalizer, type NormalizerApp } from '@ingest/normalizer';
import { buildSinkWriter, type SinkWriterApp } from '@ingest/sink-writer';

export interface AllOptions {
  config: IngestConfig;
  redis?: Redis;
  logger?: boolean;
  logging?: LoggingOptions;
  /** Passed to the edge (tests shorten the tenants reload). */
  edge?: Pick<EdgeOptions, 'tenantsReloadMs' | 'cutover' | 'openFileLimit'>;
  /** Passed to the sink writer (tests wrap the log or share a store). */
  sink?: Pick<Parameters<typeof buildSinkWriter>[0], 'log' | 'store'>;
}

/** The three roles of one process, upstream first; each keeps its own HTTP app for its internal and admin routes. */
export interface AllRoles {
  edge: FastifyInstance;
  normalizer: NormalizerApp;
  sink: SinkWriterApp;
  /** Drains upstream first (the edge stops taking requests, then what is in flight flows down), then closes. Idempotent. */
  close(): Promise<void>;
}

/**
 * Every role in one process (what `pnpm start` runs; Mimir's and Loki's `-target=all`): the edge
 * calls the normalizer and the normalizer calls the sink writer directly, with the same budgets,
 * fair shares and 429/503 answers as across processes, but no HTTP hop, so an entry is parsed
 * once and its row encoded once on its whole way to the log.
 */
export async function buildAll(opts: AllOptions): Promise<AllRoles> {
  const { config } = opts;
  const common = { ...(opts.logger === false ? { logger: false } : {}), ...(opts.logging ? { logging: opts.logging } : {}) };
  const sink = await buildSinkWriter({ config: config.sink, backends: config.backends, ...common, ...opts.sink });
  let normalizer: NormalizerApp | undefined;
  try {
    normalizer = await buildNormalizer({ config: config.normalizer, sink: sink.hop, ...common });
    const edge = await buildEdge({ config: config.edge, normalizer: normalizer.hop, query: sink.hop, ...common, ...(opts.redis ? { redis: opts.redis } : {}), ...opts.edge });
    const roles = { edge, normalizer, sink };
    let closing: Promise<void> | undefined;
    return {
      ...roles,
      close: () => {
        closing ??= (async () => {
          await edge.close();
          await roles.normalizer.close();
          await sink.close();
        })();
        return closing;
      },
    };
  } catch (e) {
    // Half-built: what was opened (the log, the store) is closed before the error surfaces.
    await normalizer?.close();
    await sink.close();
    throw e;
  }
}
