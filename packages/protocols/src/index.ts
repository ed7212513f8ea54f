export { DEFAULT_LABEL_LIMITS, emptyDecoded } from './types.ts';
export type { Decoded, DecodeOptions, LabelLimits, Refusal } from './types.ts';
export { labelKey, metricName } from './labels.ts';
export { otlpEncoding, decodeOtlp, OTLP_TYPES } from './otlp/decode.ts';
export type { OtlpEncoding } from './otlp/decode.ts';
export { decodeOtlpLogs, severityLevel } from './otlp/logs.ts';
export { decodeOtlpMetrics, ucumUnit } from './otlp/metrics.ts';
export { otlpStatus, otlpSuccess } from './otlp/response.ts';
export type { OtlpSignal } from './otlp/response.ts';
