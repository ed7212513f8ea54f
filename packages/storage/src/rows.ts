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
