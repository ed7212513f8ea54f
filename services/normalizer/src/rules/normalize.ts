import type { EntryType, NormalizedEntry } from '@ingest/contracts';
import { encodeRow } from '@ingest/storage/rows';
import { alertRule } from './alert.ts';
import { checkAppAndSource, checkData, checkLabels, checkProducerId, checkTimestamp, checkType, type Step } from './envelope.ts';
import { eventRule } from './event.ts';
import { healthRule } from './health.ts';
import { assignId } from './id.ts';
import { reject, resolveLimits, type EntryOutcome, type NormalizeContext, type TypeRule } from './limits.ts';
import { logRule } from './log.ts';
import { metricRule } from './metric.ts';
import { describe, fitsBytes, isEmptyObject, isPlainObject } from './values.ts';

const TYPE_RULES: Record<EntryType, TypeRule> = {
  log: logRule,
  metric: metricRule,
  event: eventRule,
  health: healthRule,
  alert: alertRule,
};

const applyTypeRule: Step = (raw, out, limits) => TYPE_RULES[out.type](raw.data as Record<string, unknown>, out, limits);

/**
 * The field checks, in order; cheap envelope checks run before type rules. After them
 * normalizeEntry measures `data`, assigns the id (a hash, so only for entries otherwise valid),
 * encodes the row and checks its size on the bytes that will be stored.
 */
export const STEPS: readonly (readonly [name: string, step: Step])[] = [
  ['type', checkType],
  ['timestamp', checkTimestamp],
  ['app-source', checkAppAndSource],
  ['labels', checkLabels],
  ['producer-id', checkProducerId],
  ['data', checkData],
  ['type-rule', applyTypeRule],
];

/**
 * Validates one wire v2 entry and converts it to canonical form. Pure and synchronous; never throws.
 * The output `data` shares nested values with `raw` (no deep copy), so do not mutate `raw` afterwards.
 */
export function normalizeEntry(raw: unknown, ctx: NormalizeContext): EntryOutcome {
  try {
    if (!isPlainObject(raw)) return reject('INGEST_ERR_ENTRY_NOT_OBJECT', `entry must be a JSON object, got ${describe(raw)}`);
    const limits = resolveLimits(ctx.limits);
    // Every field initialised in one fixed order: one hidden class for all entries, and a stable JSON layout.
    const out: NormalizedEntry = {
      id: '',
      tenant: ctx.tenant,
      type: 'log',
      ts: 0,
      receivedAt: ctx.receivedAt,
      app: '',
      source: '',
      labels: {},
      name: '',
      value: null,
      unit: '',
      level: '',
      message: '',
      data: {},
    };
    for (const [, step] of STEPS) {
      const rejection = step(raw, out, limits);
      if (rejection !== undefined) return rejection;
    }
    // Serialized once: measured here, then embedded in the row as is.
    const dataJson = isEmptyObject(out.data) ? '{}' : JSON.stringify(out.data);
    if (!fitsBytes(dataJson, limits.maxDataBytes)) return reject('INGEST_ERR_ENTRY_TOO_LARGE', `data (beyond the fields lifted into columns) is ${Buffer.byteLength(dataJson, 'utf8')} bytes of JSON; the limit is ${limits.maxDataBytes} bytes`);
    assignId(raw, out, limits);
    const row = encodeRow(out, dataJson);
    // Checked on what will be stored (escapes included), not estimated from the parts.
    if (!fitsBytes(row, limits.maxEntryBytes)) return reject('INGEST_ERR_ENTRY_TOO_LARGE', `the stored entry is ${Buffer.byteLength(row, 'utf8')} bytes; the limit is ${limits.maxEntryBytes} bytes`);
    return { ok: true, entry: out, row };
  } catch (err) {
    // Unreachable for JSON input; a last line so an in-process caller's odd object (a throwing
    // getter, a BigInt) costs one entry, not the batch.
    const why = err instanceof Error ? err.message.slice(0, 64) : 'unknown error';
    return reject('INGEST_ERR_ENTRY_FIELD_TYPE', `entry holds a value that is not JSON data (${why})`);
  }
}
