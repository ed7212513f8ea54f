import type { FastifyServerOptions } from 'fastify';

/**
 * Structured JSON logs only: untrusted strings (tenant-supplied) can't forge lines (CRLF
 * injection). Authorization headers never reach a log line.
 */
export function loggerOptions(service: string, level = process.env['LOG_LEVEL'] ?? 'info'): FastifyServerOptions['logger'] {
  return {
    level,
    base: { service },
    redact: { paths: ['req.headers.authorization', 'headers.authorization'], censor: '[redacted]' },
  };
}
