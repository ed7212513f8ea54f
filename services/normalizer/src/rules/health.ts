import { reject, type RejectedOutcome, type TypeRule } from './limits.ts';
import { optionalString, requiredEnum, vocabulary } from './fields.ts';
import { convertUnit } from './units.ts';
import { copyExcept, describe, isPlainObject, preview } from './values.ts';

export const HEALTH_STATUSES = vocabulary(['ok', 'degraded', 'down', 'unknown'], {
  up: 'ok',
  healthy: 'ok',
  pass: 'ok',
  passing: 'ok',
  warn: 'degraded',
  warning: 'degraded',
  fail: 'down',
  failed: 'down',
  failing: 'down',
  unhealthy: 'down',
  critical: 'down',
});

/**
 * Latency comes as `latencyMs` (a number of milliseconds) or `latency` ({ value, unit } with a
 * duration unit); a bare `latency` number is refused because its unit would be a guess.
 */
function latencySeconds(data: Record<string, unknown>): number | undefined | RejectedOutcome {
  const ms = data.latencyMs;
  const obj = data.latency;
  const hasMs = ms !== undefined && ms !== null;
  const hasObj = obj !== undefined && obj !== null;
  if (hasMs && hasObj) return reject('INGEST_ERR_ENTRY_FIELD_TYPE', 'send either data.latencyMs or data.latency, not both');
  if (hasMs) {
    if (typeof ms !== 'number' || !Number.isFinite(ms)) {
      return reject('INGEST_ERR_ENTRY_VALUE', `data.latencyMs must be a finite number of milliseconds, got ${describe(ms)}`);
    }
    return ms / 1000;
  }
  if (!hasObj) return undefined;
  if (!isPlainObject(obj)) {
    return reject('INGEST_ERR_ENTRY_FIELD_TYPE', `data.latency must be an object { "value": 12, "unit": "ms" } (or send data.latencyMs), got ${describe(obj)}`);
  }
  const value = obj.value;
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    return reject('INGEST_ERR_ENTRY_VALUE', `data.latency.value must be a finite number, got ${describe(value)}`);
  }
  const unit = obj.unit;
  if (typeof unit !== 'string') return reject('INGEST_ERR_ENTRY_FIELD_TYPE', `data.latency.unit must be a duration unit such as "ms" or "s", got ${describe(unit)}`);
  const c = convertUnit(value, unit);
  if (!c.ok) return reject('INGEST_ERR_ENTRY_UNIT', `data.latency.unit ${preview(unit)} ${c.reason}`);
  if (c.unit !== 's') return reject('INGEST_ERR_ENTRY_UNIT', `data.latency.unit ${preview(unit)} is not a duration; use ns, us, ms, s, min or h`);
  if (!Number.isFinite(c.value)) return reject('INGEST_ERR_ENTRY_VALUE', `data.latency ${String(value)} ${preview(unit)} overflows when converted to seconds`);
  return c.value;
}

// When the check name came from `check`, a `name` key is ordinary data, and the other way round.
const LIFTED_WITH_CHECK: ReadonlySet<string> = new Set(['status', 'check', 'message', 'latencyMs', 'latency']);
const LIFTED_WITH_NAME: ReadonlySet<string> = new Set(['status', 'name', 'message', 'latencyMs', 'latency']);

export const healthRule: TypeRule = (data, out, limits) => {
  const status = requiredEnum(data.status, 'data.status', HEALTH_STATUSES);
  if (typeof status === 'object') return status;
  // `check` names the check; `name` is accepted too, as most other entry types use it.
  const checkKey = data.check !== undefined && data.check !== null ? 'check' : 'name';
  const check = optionalString(data[checkKey], `data.${checkKey}`, limits.maxNameBytes);
  if (typeof check === 'object') return check;
  const message = optionalString(data.message, 'data.message', limits.maxMessageBytes);
  if (typeof message === 'object') return message;
  const latency = latencySeconds(data);
  if (typeof latency === 'object') return latency;

  out.name = check !== undefined && check !== '' ? check : out.app !== '' ? out.app : 'default';
  out.level = status;
  out.message = message ?? '';
  copyExcept(data, checkKey === 'check' ? LIFTED_WITH_CHECK : LIFTED_WITH_NAME, out.data);
  // NormalizedEntry.value is for metrics only, so latency rides in data, always in seconds.
  if (latency !== undefined) out.data.latencySeconds = latency;
  return undefined;
};
