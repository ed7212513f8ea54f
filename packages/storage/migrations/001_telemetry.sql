-- Live table. ReplacingMergeTree collapses rows with the same sorting key; the key ends in `id`,
-- and an id always normalizes to the same tenant, type and ts, so duplicates of an entry collapse
-- to one row. Queries that must count exactly read with FINAL.
-- insert_deduplication_token needs non_replicated_deduplication_window > 0 on a non-replicated table.
CREATE TABLE IF NOT EXISTS telemetry
(
    tenant_id    LowCardinality(String),
    id           String,
    type         LowCardinality(String),
    ts           DateTime64(3, 'UTC'),
    received_at  DateTime64(3, 'UTC'),
    app          LowCardinality(String),
    source       LowCardinality(String),
    name         String,
    value        Nullable(Float64),
    unit         LowCardinality(String),
    level        LowCardinality(String),
    message      String,
    labels       Map(String, String),
    data         String,
    log_partition UInt32,
    log_offset   UInt64
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMMDD(ts)
ORDER BY (tenant_id, type, ts, id)
SETTINGS non_replicated_deduplication_window = 10000
