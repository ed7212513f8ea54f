import { reject, type TypeRule } from './limits.ts';
import { optionalEnum, optionalString, requiredString, vocabulary } from './fields.ts';
import { convertUnit } from './units.ts';
import { copyExcept, describe, preview } from './values.ts';

// Prometheus metric names plus '.', which OpenTelemetry names use. Linear: one character class run.
const METRIC_NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:.]*$/;
const MAX_UNIT_BYTES = 64;

export const METRIC_KINDS = vocabulary(['gauge', 'counter'], {});

const LIFTED: ReadonlySet<string> = new Set(['name', 'value', 'unit', 'kind']);

export const metricRule: TypeRule = (data, out, limits) => {
  const name = requiredString(data.name, 'data.name', limits.maxNameBytes, 'a metric name', true);
  if (typeof name === 'object') return name;
  if (!METRIC_NAME_RE.test(name)) {
    return reject('INGEST_ERR_ENTRY_NAME', `data.name ${preview(name)} must match ${METRIC_NAME_RE.source} (letters, digits, '_', ':', '.'; not starting with a digit)`);
  }

  const raw = data.value;
  if (raw === undefined || raw === null) return reject('INGEST_ERR_ENTRY_FIELD_MISSING', 'data.value is required: a finite number');
  if (typeof raw !== 'number') return reject('INGEST_ERR_ENTRY_VALUE', `data.value must be a finite JSON number, got ${describe(raw)}`);
  if (!Number.isFinite(raw)) return reject('INGEST_ERR_ENTRY_VALUE', `data.value is not a finite number (got ${String(raw)}: a JSON number beyond ±1.8e308 overflows a 64-bit float)`);

  const unit = optionalString(data.unit, 'data.unit', MAX_UNIT_BYTES);
  if (typeof unit === 'object') return unit;
  const kind = optionalEnum(data.kind, 'data.kind', METRIC_KINDS, 'gauge');
  if (typeof kind === 'object') return kind;

  let value = raw;
  let canonicalUnit = '';
  let converted = false;
  if (unit !== undefined) {
    const c = convertUnit(raw, unit);
    if (!c.ok) return reject('INGEST_ERR_ENTRY_UNIT', `data.unit ${preview(unit)} ${c.reason}`);
    // 1e308 TiB is a finite input whose conversion is not.
    if (!Number.isFinite(c.value)) {
      return reject('INGEST_ERR_ENTRY_VALUE', `data.value ${String(raw)} ${preview(unit)} overflows when converted to ${c.unit}`);
    }
    value = c.value;
    canonicalUnit = c.unit;
    converted = c.converted;
  }

  out.name = name;
  out.value = value;
  out.unit = canonicalUnit;
  copyExcept(data, LIFTED, out.data);
  // After the copy, so a producer's own "originalUnit" cannot masquerade as our provenance.
  out.data.kind = kind;
  if (converted && unit !== undefined) {
    out.data.originalUnit = unit;
    out.data.originalValue = raw;
  }
  return undefined;
};
