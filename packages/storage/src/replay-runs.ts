import { randomUUID } from 'node:crypto';
import type { TelemetryStore } from './store.ts';
import { assertShadowTable, type ShadowTableName } from './shadow.ts';

/** Table of replay runs (packages/storage/migrations/003_replay_runs.sql). */
const RUNS_TABLE = 'replay_runs';

export type ReplayRunStatus = 'running' | 'done' | 'failed' | 'cancelled';

export interface ReplayRunRecord {
  runId: string;
  topic: string;
  partition: number;
  target: ShadowTableName;
  /** '' when the run was not limited to one tenant. */
  tenant: string;
  firstOffset: number;
  lastOffset: number;
  status: ReplayRunStatus;
  who: string;
  /** epoch ms */
  startedAt: number;
  updatedAt: number;
  read: number;
  inserted: number;
  skipped: number;
  deadLettered: number;
}

/** How many earlier runs a plan lists; older ones are still in the table and the audit log. */
const MAX_LISTED = 50;

export class ReplayRuns {
  constructor(private readonly store: TelemetryStore) {}

  async record(rows: readonly ReplayRunRecord[]): Promise<void> {
    if (rows.length === 0) return;
    for (const r of rows) assertShadowTable(r.target);
    await this.store.client.insert({
      table: RUNS_TABLE,
      values: rows.map((r) => ({
        run_id: r.runId,
        topic: r.topic,
        log_partition: r.partition,
        target: r.target,
        tenant: r.tenant,
        first_offset: r.firstOffset,
        last_offset: r.lastOffset,
        status: r.status,
        who: r.who,
        started_at: r.startedAt,
        updated_at: r.updatedAt,
        read_entries: r.read,
        inserted: r.inserted,
        skipped: r.skipped,
        dead_lettered: r.deadLettered,
      })),
      format: 'JSONEachRow',
      // A fresh token: chDB applies settings as session SETs, so without one this insert could
      // inherit the previous insert's token (harmless here, but never let it be ambiguous).
      clickhouse_settings: { insert_deduplication_token: `replay-runs:${randomUUID()}`, async_insert: 0 },
    });
  }

  /** Earlier runs into `target` whose offset range overlaps the given one, newest first. */
  async overlapping(topic: string, target: ShadowTableName, ranges: ReadonlyArray<{ partition: number; first: number; last: number }>): Promise<ReplayRunRecord[]> {
    assertShadowTable(target);
    const live = ranges.filter((r) => r.first <= r.last);
    if (live.length === 0) return [];
    const rs = await this.store.client.query({
      query: `SELECT run_id, topic, log_partition, target, tenant, first_offset, last_offset, status, who,
                     toUnixTimestamp64Milli(started_at) AS started_ms, toUnixTimestamp64Milli(updated_at) AS updated_ms,
                     read_entries, inserted, skipped, dead_lettered
              FROM ${RUNS_TABLE} FINAL
              WHERE topic = {topic:String} AND target = {target:String}
                AND arrayExists((p, f, l) -> p = log_partition AND first_offset <= l AND last_offset >= f,
                                {parts:Array(UInt32)}, {firsts:Array(UInt64)}, {lasts:Array(UInt64)})
              ORDER BY started_at DESC, log_partition
              LIMIT {limit:UInt32}`,
      query_params: { topic, target, parts: live.map((r) => r.partition), firsts: live.map((r) => r.first), lasts: live.map((r) => r.last), limit: MAX_LISTED },
      format: 'JSONEachRow',
    });
    const out: ReplayRunRecord[] = [];
    for (const r of await rs.json<Record<string, string | number>>()) {
      out.push({
        runId: String(r['run_id']),
        topic: String(r['topic']),
        partition: Number(r['log_partition']),
        target,
        tenant: String(r['tenant']),
        firstOffset: Number(r['first_offset']),
        lastOffset: Number(r['last_offset']),
        status: String(r['status']) as ReplayRunStatus,
        who: String(r['who']),
        startedAt: Number(r['started_ms']),
        updatedAt: Number(r['updated_ms']),
        read: Number(r['read_entries']),
        inserted: Number(r['inserted']),
        skipped: Number(r['skipped']),
        deadLettered: Number(r['dead_lettered']),
      });
    }
    return out;
  }
}
