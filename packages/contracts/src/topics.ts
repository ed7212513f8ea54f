/** Default topic names (configurable through LOG_TOPIC / LOG_DLQ_TOPIC). */
export const TOPICS = {
  telemetry: 'telemetry.v2',
  deadLetter: 'telemetry.v2.dlq',
  audit: 'telemetry.v2.audit',
} as const;
