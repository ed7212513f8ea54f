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

/**
 * The columns of an encoded row, in its order (JSONCompactEachRow is positional): every column
 * of the table, the log position last because only the loader knows it.
 */
export const ROW_COLUMNS = ['ts', 'received_at', 'tenant_id', 'id', 'type', 'app', 'source', 'name', 'value', 'unit', 'level', 'message', 'labels', 'data', 'log_partition', 'log_offset'] as const;

/**
 * An entry as the bytes the table takes: one JSONCompactEachRow line (no newline) of every column
 * but the log position. Made once, by the normalizer, in one native JSON.stringify; the log stores
 * it and the loader inserts it as is. `dataJson` is `JSON.stringify(e.data)` when the caller
 * already has it (the normalizer measures it), so it is never serialized twice. The event time
 * comes first, so the loader reads it from the bytes.
 */
export function encodeRow(e: NormalizedEntry, dataJson: string = JSON.stringify(e.data)): string {
  // Non-finite values come out as null, as JSON has them.
  return JSON.stringify([Math.trunc(e.ts), Math.trunc(e.receivedAt), e.tenant, e.id, e.type, e.app, e.source, e.name, e.value, e.unit, e.level, e.message, e.labels, dataJson]);
}

const OPEN = 0x5b; // [
const CLOSE = 0x5d; // ]
const COMMA = 0x2c;

/** True for a message in the encoded-row format (anything else is a log message of an older version, a JSON object). */
export function isEncodedRow(value: Buffer): boolean {
  return value.length > 2 && value[0] === OPEN && value[value.length - 1] === CLOSE;
}

/** The event time of an encoded row, read from its first field; NaN if the bytes are not one. */
export function encodedRowTs(value: Buffer): number {
  let n = 0;
  let i = 1;
  for (; i < value.length && i < 17; i++) {
    const c = value[i] as number;
    if (c === COMMA) break;
    if (c < 0x30 || c > 0x39) return NaN;
    n = n * 10 + (c - 0x30);
  }
  return i === 1 || value[0] !== OPEN || value[i] !== COMMA ? NaN : n;
}

/** What a row gains for its log position in an insert body: its closing bracket becomes the two position columns. */
export function positionTail(partition: number, offset: number): string {
  return `,${partition},${offset}]\n`;
}

/**
 * One insert body of encoded rows with their position tails, as JSONCompactEachRow lines. Byte work
 * only, and one allocation for the whole body.
 */
export function positionedBody(rows: ReadonlyArray<{ readonly row: Buffer; readonly tail: string }>): Buffer {
  let total = 0;
  for (const r of rows) total += r.row.length - 1 + r.tail.length;
  const out = Buffer.allocUnsafe(total);
  let p = 0;
  for (const r of rows) {
    p += r.row.copy(out, p, 0, r.row.length - 1);
    p += out.write(r.tail, p, 'latin1');
  }
  return out;
}

/** The row decoded, for the few paths that need fields in JavaScript (replay, refused rows). */
export function decodeRow(value: Buffer, partition: number, offset: number): TelemetryRow {
  const f = JSON.parse(value.toString('utf8')) as unknown[];
  if (!Array.isArray(f) || f.length !== ROW_COLUMNS.length - 2) throw new Error(`an encoded row has ${ROW_COLUMNS.length - 2} fields; this has ${Array.isArray(f) ? f.length : 'none'}`);
  return {
    ts: f[0] as number,
    received_at: f[1] as number,
    tenant_id: f[2] as string,
    id: f[3] as string,
    type: f[4] as string,
    app: f[5] as string,
    source: f[6] as string,
    name: f[7] as string,
    value: f[8] as number | null,
    unit: f[9] as string,
    level: f[10] as string,
    message: f[11] as string,
    labels: f[12] as Record<string, string>,
    data: f[13] as string,
    log_partition: partition,
    log_offset: offset,
  };
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
