import type { NormalizedEntry } from '@ingest/contracts';

/** A telemetry row as ClickHouse's JSONEachRow takes it (DateTime64(3) from integer ms). */
export interface TelemetryRow {
  tenant_id: string;
  id: string;
  type: string;
  ts: number;
  received_at: number;
  app: string;
  source: string;
  name: string;
  value: number | null;
  unit: string;
  level: string;
  message: string;
  labels: Record<string, string>;
  data: string;
  log_partition: number;
  log_offset: number;
}

/** Every encoded row starts with this, then the event time in integer ms: the loader reads the day there without parsing the row. */
export const ROW_PREFIX = '{"ts":';
const ROW_PREFIX_BYTES = Buffer.from(ROW_PREFIX);

/**
 * An entry as the bytes the table takes: one JSONEachRow line (no newline), every column except
 * the log position, which only the loader knows. Made once, by the normalizer; the log stores it
 * and the loader inserts it as is. `dataJson` is `JSON.stringify(e.data)` when the caller already
 * has it (the normalizer measures it), so it is never serialized twice.
 */
export function encodeRow(e: NormalizedEntry, dataJson: string = JSON.stringify(e.data)): string {
  const value = e.value === null || !Number.isFinite(e.value) ? 'null' : String(e.value);
  return (
    `${ROW_PREFIX}${Math.trunc(e.ts)},"received_at":${Math.trunc(e.receivedAt)},"tenant_id":${JSON.stringify(e.tenant)},"id":${JSON.stringify(e.id)},"type":${JSON.stringify(e.type)}` +
    `,"app":${JSON.stringify(e.app)},"source":${JSON.stringify(e.source)},"name":${JSON.stringify(e.name)},"value":${value},"unit":${JSON.stringify(e.unit)}` +
    `,"level":${JSON.stringify(e.level)},"message":${JSON.stringify(e.message)},"labels":${JSON.stringify(e.labels)},"data":${JSON.stringify(dataJson)}}`
  );
}

/** True for a message in the encoded-row format (anything else is a log message of an older version). */
export function isEncodedRow(value: Buffer): boolean {
  return value.length > ROW_PREFIX_BYTES.length + 1 && value.compare(ROW_PREFIX_BYTES, 0, ROW_PREFIX_BYTES.length, 0, ROW_PREFIX_BYTES.length) === 0 && value[value.length - 1] === 0x7d;
}

/** The event time of an encoded row, read from its fixed prefix; NaN if the bytes are not one. */
export function encodedRowTs(value: Buffer): number {
  let n = 0;
  let i = ROW_PREFIX_BYTES.length;
  const start = i;
  for (; i < value.length && i < start + 16; i++) {
    const c = value[i] as number;
    if (c === 0x2c) break;
    if (c < 0x30 || c > 0x39) return NaN;
    n = n * 10 + (c - 0x30);
  }
  return i === start || value[i] !== 0x2c ? NaN : n;
}

/**
 * Appends an encoded row, with its log position, to a JSONEachRow insert body: the row's closing
 * brace is replaced by the two position columns. Byte work only.
 */
export function appendPositioned(out: Buffer[], value: Buffer, partition: number, offset: number): number {
  const head = value.subarray(0, value.length - 1);
  const tail = Buffer.from(`,"log_partition":${partition},"log_offset":${offset}}\n`);
  out.push(head, tail);
  return head.length + tail.length;
}

/** The row decoded, for the few paths that need fields in JavaScript (replay, refused rows). */
export function decodeRow(value: Buffer, partition: number, offset: number): TelemetryRow {
  const r = JSON.parse(value.toString('utf8')) as TelemetryRow;
  r.log_partition = partition;
  r.log_offset = offset;
  return r;
}

export function toRow(e: NormalizedEntry, partition: number, offset: number): TelemetryRow {
  return {
    tenant_id: e.tenant,
    id: e.id,
    type: e.type,
    ts: e.ts,
    received_at: e.receivedAt,
    app: e.app,
    source: e.source,
    name: e.name,
    value: e.value,
    unit: e.unit,
    level: e.level,
    message: e.message,
    labels: e.labels,
    data: JSON.stringify(e.data),
    log_partition: partition,
    log_offset: offset,
  };
}
