import { LogController, type FastifyServerOptions } from 'fastify';

/**
 * Structured JSON logs only: untrusted strings (tenant-supplied) can't forge lines (CRLF
 * injection). Authorization headers never reach a log line.
 */
export interface LoggingOptions {
  level: string;
  /** Per-request access lines cost more than the work at ingest rates; they are opt-in. */
  requests: boolean;
}

export function loggerOptions(service: string, level = 'info'): FastifyServerOptions['logger'] {
  return {
    level,
    base: { service },
    redact: { paths: ['req.headers.authorization', 'headers.authorization'], censor: '[redacted]' },
  };
}

/** Logger and request-logging options for a service's fastify factory; `false` silences it (tests). */
export function serverLogOptions(service: string, logging: LoggingOptions | undefined, enabled = true): Pick<FastifyServerOptions, 'logger' | 'logController'> {
  if (!enabled) return { logger: false };
  return {
    logger: loggerOptions(service, logging?.level),
    logController: new LogController({ disableRequestLogging: !(logging?.requests ?? false) }),
  };
}
