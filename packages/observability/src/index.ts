export { createServiceMetrics } from './metrics.ts';
export type { ServiceMetrics } from './metrics.ts';
export { installServiceBasics, toIngestError, sendError, traceHeaders, traceChild, traceStage, traceUnder, adminListener, isProtectedRoute, clientErrorHandler, clientErrorOf, protocolErrorOptions } from './http.ts';
export type { Readiness, ServiceBasicsOptions } from './http.ts';
export { loggerOptions, serverLogOptions } from './logger.ts';
export type { LoggingOptions } from './logger.ts';
export { startTracing, tracerProviderRegistered } from './tracing.ts';
export type { Tracing, TracingOptions } from './tracing.ts';
