import { encodeOtlp, OTLP_TYPES, type OtlpEncoding } from './decode.ts';

export type OtlpSignal = 'logs' | 'metrics';

/**
 * The 200 answer: an empty Export…ServiceResponse when everything was taken, or one with
 * partial_success (how many were refused, and why) when some were not, as the OTLP spec asks.
 */
export function otlpSuccess(signal: OtlpSignal, encoding: OtlpEncoding, rejected: number, errorMessage: string): { contentType: string; body: Buffer | string } {
  const type = signal === 'logs' ? OTLP_TYPES.logsResponse() : OTLP_TYPES.metricsResponse();
  if (rejected === 0) return encodeOtlp(type, {}, encoding);
  const counted = signal === 'logs' ? { rejectedLogRecords: rejected } : { rejectedDataPoints: rejected };
  return encodeOtlp(type, { partialSuccess: { ...counted, errorMessage } }, encoding);
}

/** gRPC status codes for the HTTP statuses the edge answers with (google.rpc.Code). */
function grpcCode(httpStatus: number): number {
  if (httpStatus === 400 || httpStatus === 413 || httpStatus === 415) return 3; // INVALID_ARGUMENT
  if (httpStatus === 401) return 16; // UNAUTHENTICATED
  if (httpStatus === 404) return 5; // NOT_FOUND
  if (httpStatus === 408) return 4; // DEADLINE_EXCEEDED
  if (httpStatus === 429) return 8; // RESOURCE_EXHAUSTED
  if (httpStatus === 503) return 14; // UNAVAILABLE
  return 13; // INTERNAL
}

/** An error answer: a google.rpc.Status in the request's encoding; the message leads with the INGEST_ERR_ code. */
export function otlpStatus(encoding: OtlpEncoding, httpStatus: number, code: string, message: string): { contentType: string; body: Buffer | string } {
  return encodeOtlp(OTLP_TYPES.status(), { code: grpcCode(httpStatus), message: `${code}: ${message}` }, encoding);
}
