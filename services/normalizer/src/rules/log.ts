import { reject, type RejectedOutcome, type TypeRule } from './limits.ts';
import { enumValue, requiredString, vocabulary } from './fields.ts';
import { copyExcept, describe } from './values.ts';

export const LOG_LEVELS = vocabulary(['trace', 'debug', 'info', 'warn', 'error', 'fatal'], {
  warning: 'warn',
  err: 'error',
  critical: 'fatal',
  crit: 'fatal',
  // syslog severities that have no level of their own here
  notice: 'info',
  informational: 'info',
  emerg: 'fatal',
  emergency: 'fatal',
  panic: 'fatal',
});

// pino and bunyan write levels as numbers; these are their standard values.
const NUMERIC_LEVELS = new Map<number, string>([
  [10, 'trace'],
  [20, 'debug'],
  [30, 'info'],
  [40, 'warn'],
  [50, 'error'],
  [60, 'fatal'],
]);

const LIFTED: ReadonlySet<string> = new Set(['message', 'level']);

function logLevel(value: unknown): string | RejectedOutcome {
  if (value === undefined || value === null) return 'info';
  if (typeof value === 'string') return enumValue(value, 'data.level', LOG_LEVELS);
  if (typeof value === 'number') {
    const level = NUMERIC_LEVELS.get(value);
    if (level !== undefined) return level;
    return reject('INGEST_ERR_ENTRY_ENUM', `data.level ${String(value)} is not a pino level (10, 20, 30, 40, 50, 60); or send one of ${LOG_LEVELS.canonical.join(', ')}`);
  }
  return reject('INGEST_ERR_ENTRY_FIELD_TYPE', `data.level must be a string, one of ${LOG_LEVELS.canonical.join(', ')}; got ${describe(value)}`);
}

export const logRule: TypeRule = (data, out, limits) => {
  const message = requiredString(data.message, 'data.message', limits.maxMessageBytes, 'a string');
  if (typeof message === 'object') return message;
  const level = logLevel(data.level);
  if (typeof level === 'object') return level;
  out.message = message;
  out.level = level;
  copyExcept(data, LIFTED, out.data);
  return undefined;
};
