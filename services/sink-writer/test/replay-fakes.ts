import type { LogAdmin, PartitionOffsets, StoredMessage } from '@ingest/log';
import { rowKey, type RowKey, type ShadowTableName, type TelemetryRow } from '@ingest/storage';
import type { ExistenceLookup } from '../src/replay/scan.ts';
import type { ShadowWriter } from '../src/replay/execute.ts';

/** Test doubles for the replay unit tests: an in-memory log admin and shadow table. */

export interface FakeMessage {
  offset: number;
  timestamp: number;
  key?: string;
  /** Raw value; default: a valid NormalizedEntry JSON for `key`. */
  value?: string;
  id?: string;
  ts?: number;
}

export function entryJson(tenant: string, id: string, ts: number): string {
  return JSON.stringify({ id, tenant, type: 'log', ts, receivedAt: ts, app: 'a', source: 's', labels: {}, name: '', value: null, unit: '', level: 'info', message: `m-${id}`, data: {} });
}

export class FakeAdmin implements Pick<LogAdmin, 'partitions' | 'read'> {
  reads = 0;
  readonly parts = new Map<number, { low: number; high: number; msgs: StoredMessage[] }>();

  constructor(readonly topic: string) {}

  add(partition: number, msgs: FakeMessage[], low?: number, high?: number): this {
    const stored = msgs.map(
      (m): StoredMessage => ({
        topic: this.topic,
        partition,
        offset: m.offset,
        key: m.key ?? 't1',
        value: Buffer.from(m.value ?? entryJson(m.key ?? 't1', m.id ?? `${partition}-${m.offset}`, m.ts ?? Date.UTC(2026, 10, 20, 12) + m.offset)),
        headers: {},
        timestamp: m.timestamp,
      }),
    );
    const last = stored[stored.length - 1];
    this.parts.set(partition, { low: low ?? stored[0]?.offset ?? 0, high: high ?? (last ? last.offset + 1 : 0), msgs: stored });
    return this;
  }

  async partitions(topic: string): Promise<PartitionOffsets[]> {
    if (topic !== this.topic) throw new RangeError(`unknown topic ${topic}`);
    return [...this.parts].map(([partition, p]) => ({ partition, low: p.low, high: p.high })).sort((a, b) => a.partition - b.partition);
  }

  async read(topic: string, partition: number, offset: number, maxMessages: number): Promise<StoredMessage[]> {
    this.reads++;
    const p = this.parts.get(partition);
    if (topic !== this.topic || !p) throw new RangeError(`topic ${topic} has no partition ${partition}`);
    const from = Math.max(offset, p.low);
    // Binary search for the first message at or after `from` (messages are in offset order).
    let lo = 0;
    let hi = p.msgs.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((p.msgs[mid] as StoredMessage).offset < from) lo = mid + 1;
      else hi = mid;
    }
    return p.msgs.slice(lo, lo + maxMessages);
  }
}

/** A shadow table in memory, keyed like the ReplacingMergeTree; records every insert. */
export class FakeShadow implements ExistenceLookup, ShadowWriter {
  readonly rows = new Map<string, TelemetryRow>();
  readonly inserts: Array<{ table: string; rows: number; token: string }> = [];
  failNext = 0;

  async existing(_table: ShadowTableName, rows: readonly RowKey[]): Promise<Set<string>> {
    const out = new Set<string>();
    for (const r of rows) if (this.rows.has(rowKey(r))) out.add(rowKey(r));
    return out;
  }

  async insert(table: ShadowTableName, rows: TelemetryRow[], token: string): Promise<void> {
    this.inserts.push({ table, rows: rows.length, token });
    if (this.failNext > 0) {
      this.failNext--;
      // Unknown outcome: the block landed, but the caller sees an error (ECONNRESET mid-insert).
      for (const r of rows) this.rows.set(rowKey(r), r);
      throw new Error('socket hang up');
    }
    for (const r of rows) this.rows.set(rowKey(r), r);
  }
}
