import { logLevel, type logCreator } from 'kafkajs';

/** Receives one structured log record; the default writes a JSON line to stderr. */
export type LogSink = (record: Record<string, unknown>) => void;

export type KafkaLogLevel = 'error' | 'warn' | 'info' | 'debug';

export const stderrSink: LogSink = (record) => {
  let line: string;
  try {
    line = JSON.stringify(record);
  } catch {
    // A circular or BigInt field in some kafkajs extra must not turn logging into a crash.
    line = JSON.stringify({ time: record['time'], level: record['level'], msg: String(record['msg']) });
  }
  process.stderr.write(`${line}\n`);
};

export function toKafkajsLevel(level: KafkaLogLevel): logLevel {
  switch (level) {
    case 'error':
      return logLevel.ERROR;
    case 'warn':
      return logLevel.WARN;
    case 'info':
      return logLevel.INFO;
    case 'debug':
      return logLevel.DEBUG;
  }
}

// We cap the idempotent producer's retries on purpose (kafkajs#1324 retry storms, #1686) and
// replace the producer after any failed send, which is what actually keeps its sequence numbers
// honest; kafkajs warns about the cap on every producer it creates, which would only be noise.
const SUPPRESSED = new Set(['Limiting retries for the idempotent producer may invalidate EoS guarantees']);

/** Routes kafkajs' own logger into structured records (never its default console pretty-printer). */
export function kafkajsLogCreator(sink: LogSink): logCreator {
  return () =>
    ({ namespace, label, log }) => {
      const { timestamp, message, logger: _logger, ...extra } = log;
      if (SUPPRESSED.has(message)) return;
      // kafkajs logs every error response at ERROR in its Connection namespace, including the
      // retriable ones it then retries (coordinator loading, leader moving). Whatever is not
      // retried away reaches the caller as a LogUnavailableError, which is the error to alert on.
      const level = namespace === 'Connection' && message.startsWith('Response ') ? 'warn' : label.toLowerCase();
      sink({ time: timestamp, level, component: 'kafkajs', namespace, msg: message, ...extra });
    };
}

/** A logger for this backend's own records, in the same shape as the kafkajs ones. */
export interface BackendLogger {
  warn(msg: string, extra?: Record<string, unknown>): void;
  error(msg: string, extra?: Record<string, unknown>): void;
  debug(msg: string, extra?: Record<string, unknown>): void;
}

export function backendLogger(sink: LogSink, level: KafkaLogLevel): BackendLogger {
  const threshold = toKafkajsLevel(level);
  const emit = (lvl: logLevel, label: string, msg: string, extra?: Record<string, unknown>): void => {
    if (lvl > threshold) return;
    sink({ time: new Date().toISOString(), level: label, component: 'log.kafka', msg, ...extra });
  };
  return {
    warn: (msg, extra) => emit(logLevel.WARN, 'warn', msg, extra),
    error: (msg, extra) => emit(logLevel.ERROR, 'error', msg, extra),
    debug: (msg, extra) => emit(logLevel.DEBUG, 'debug', msg, extra),
  };
}

/** The parts of an error worth a log line (Error objects serialize to `{}`). */
export function describeError(err: unknown): Record<string, unknown> {
  if (err instanceof Error) {
    const out: Record<string, unknown> = { error: err.message, errorName: err.name };
    const type = (err as { type?: unknown }).type;
    if (typeof type === 'string') out['errorType'] = type;
    return out;
  }
  return { error: String(err) };
}
