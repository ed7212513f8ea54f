import type { FastifyInstance } from 'fastify';

/**
 * Set by startService for its children. A supervised service shares the terminal's process group,
 * so Ctrl-C reaches it directly *and* through the supervisor's SIGTERM; the second would cut the
 * drain short. It also must not start draining before the services upstream of it have. So a
 * supervised service ignores SIGINT and drains on the supervisor's SIGTERM alone, in order.
 */
export const SUPERVISED_ENV = 'INGEST_SUPERVISED';

/**
 * The tail of every service's main.ts: listen, and on SIGTERM/SIGINT drain (fastify close runs
 * each service's preClose/onClose hooks: stop accepting, finish in-flight work, flush) and exit.
 * A second signal while draining exits at once. Under a supervisor, SIGINT is ignored (above).
 */
export async function serveUntilSignal(app: FastifyInstance, listen: { host: string; port: number }, after?: () => Promise<void> | void): Promise<void> {
  let stopping = false;
  const stop = async (signal: NodeJS.Signals) => {
    if (stopping) {
      app.log.warn({ signal }, 'second signal while draining; exiting now');
      process.exit(1);
    }
    stopping = true;
    app.log.info({ signal }, 'draining');
    try {
      await app.close();
      await after?.();
      process.exit(0);
    } catch (e) {
      app.log.error({ err: e }, 'error while draining');
      process.exit(1);
    }
  };
  process.on('SIGTERM', (s) => void stop(s));
  if (process.env[SUPERVISED_ENV] === '1') {
    process.on('SIGINT', () => app.log.info('SIGINT ignored: the supervisor drains this service with SIGTERM'));
  } else {
    process.on('SIGINT', (s) => void stop(s));
  }
  await app.listen(listen);
}

/** Runs a main function; a config error prints its message alone, anything else its stack. */
export function runMain(main: () => Promise<void>): void {
  main().catch((e: unknown) => {
    const err = e as Error;
    console.error(err.name === 'ConfigError' ? err.message : err);
    process.exit(1);
  });
}
