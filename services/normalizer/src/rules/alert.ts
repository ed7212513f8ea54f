import type { TypeRule } from './limits.ts';
import { optionalEnum, optionalString, requiredEnum, requiredString, vocabulary } from './fields.ts';
import { copyExcept } from './values.ts';

export const ALERT_SEVERITIES = vocabulary(['info', 'warning', 'error', 'critical'], {
  information: 'info',
  informational: 'info',
  warn: 'warning',
  err: 'error',
  crit: 'critical',
  fatal: 'critical',
});

export const ALERT_STATES = vocabulary(['firing', 'resolved'], {});

const LIFTED: ReadonlySet<string> = new Set(['name', 'severity', 'state', 'summary']);

export const alertRule: TypeRule = (data, out, limits) => {
  const name = requiredString(data.name, 'data.name', limits.maxNameBytes, 'a non-empty string', true);
  if (typeof name === 'object') return name;
  const severity = requiredEnum(data.severity, 'data.severity', ALERT_SEVERITIES);
  if (typeof severity === 'object') return severity;
  const state = optionalEnum(data.state, 'data.state', ALERT_STATES, 'firing');
  if (typeof state === 'object') return state;
  const summary = optionalString(data.summary, 'data.summary', limits.maxMessageBytes);
  if (typeof summary === 'object') return summary;

  out.name = name;
  out.level = severity;
  out.message = summary ?? '';
  copyExcept(data, LIFTED, out.data);
  out.data.state = state;
  return undefined;
};
