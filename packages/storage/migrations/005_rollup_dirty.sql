-- Rollups (telemetry_counts_1m, telemetry_metrics_1m) are not fed by a summing view: the live table
-- is exact only when read FINAL (a producer's retry or a re-read of the log inserts an entry again),
-- and a view counts every inserted copy. Instead a view marks each (tenant, minute) that received
-- rows here, and the sink writer's refresher recomputes marked minutes from `telemetry FINAL`.
-- Markers are only a to-do list: kept two days, long after the refresher has read them.
CREATE TABLE IF NOT EXISTS telemetry_rollup_dirty
(
    tenant_id LowCardinality(String),
    minute    DateTime('UTC'),
    marked_at DateTime64(3, 'UTC')
)
ENGINE = MergeTree
PARTITION BY toYYYYMMDD(marked_at)
ORDER BY (marked_at, tenant_id, minute)
TTL toDateTime(marked_at) + INTERVAL 2 DAY
