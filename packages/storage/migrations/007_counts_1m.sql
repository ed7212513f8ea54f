-- Entries per tenant, minute, type, app and level, as `telemetry FINAL` counts them. Each refresh
-- writes a bucket's rows again with a later computed_at; read with FINAL and count > 0 (a key that
-- no longer exists in live is written with count 0).
CREATE TABLE IF NOT EXISTS telemetry_counts_1m
(
    tenant_id   LowCardinality(String),
    minute      DateTime('UTC'),
    type        LowCardinality(String),
    app         LowCardinality(String),
    level       LowCardinality(String),
    count       UInt64,
    computed_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(computed_at)
PARTITION BY toYYYYMMDD(minute)
ORDER BY (tenant_id, minute, type, app, level)
