import { ingestError } from '@ingest/contracts';
import type { LabelLimits } from './types.ts';

const LABEL_KEY_OK = /^[a-zA-Z_][a-zA-Z0-9_.-]*$/;

/** A label key the normalizer accepts (^[a-zA-Z_][a-zA-Z0-9_.-]*$): other characters become '_'. */
export function labelKey(key: string): string {
  if (LABEL_KEY_OK.test(key)) return key;
  const s = key.replace(/[^a-zA-Z0-9_.-]/g, '_');
  return /^[a-zA-Z_]/.test(s) ? s : `_${s}`;
}

const METRIC_NAME_OK = /^[a-zA-Z_:][a-zA-Z0-9_:.]*$/;

/** A metric name the normalizer accepts (^[a-zA-Z_:][a-zA-Z0-9_:.]*$): other characters become '_'. */
export function metricName(name: string): string {
  if (METRIC_NAME_OK.test(name)) return name;
  const s = name.replace(/[^a-zA-Z0-9_:.]/g, '_');
  return /^[a-zA-Z_:]/.test(s) ? s : `_${s}`;
}

/**
 * Collects label pairs up to the normalizer's limits. A pair that does not fit (too many, a key or
 * value too long, the total too large) is not dropped: it goes to `overflow`, which the decoders
 * keep in the entry's data, so an attribute-rich record is stored whole instead of refused.
 */
export class LabelSet {
  readonly labels: Record<string, string> = {};
  readonly overflow: Record<string, string> = {};
  private count = 0;
  private bytes = 0;

  constructor(private readonly limits: LabelLimits) {}

  add(rawKey: string, value: string): void {
    const key = labelKey(rawKey);
    if (Object.hasOwn(this.labels, key)) {
      // A later source (the record's own attributes after the resource's) wins.
      this.bytes -= Buffer.byteLength(key) + Buffer.byteLength(this.labels[key]!);
      this.count--;
      delete this.labels[key];
    }
    const size = Buffer.byteLength(key) + Buffer.byteLength(value);
    const fits =
      this.count < this.limits.maxLabels &&
      Buffer.byteLength(key) <= this.limits.maxLabelKeyBytes &&
      Buffer.byteLength(value) <= this.limits.maxLabelValueBytes &&
      this.bytes + size <= this.limits.maxLabelBytes;
    if (!fits) {
      setOwn(this.overflow, rawKey, value);
      return;
    }
    setOwn(this.labels, key, value);
    this.count++;
    this.bytes += size;
  }

  get empty(): boolean {
    return this.count === 0;
  }

  get hasOverflow(): boolean {
    return Object.keys(this.overflow).length > 0;
  }
}

/**
 * Sets a key taken from a producer's body. "__proto__" refuses the request whole, as it does on
 * /v2/ingest (INGEST_ERR_FORBIDDEN_KEY): assigned, it would replace the object's prototype, and
 * kept as an own key, no later JSON hop would accept the entry.
 */
export function setOwn(o: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') throw ingestError('INGEST_ERR_FORBIDDEN_KEY', ['__proto__']);
  o[key] = value;
}
