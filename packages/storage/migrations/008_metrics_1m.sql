-- Metric points per tenant, minute, name, label set and app: count, sum, min and max of the value,
-- as `telemetry FINAL` holds them. Labels are sorted by key before grouping, so one label set is one
-- key whatever order its producer wrote it in; labels_hash stands for them in the sorting key.
CREATE TABLE IF NOT EXISTS telemetry_metrics_1m
(
    tenant_id   LowCardinality(String),
    minute      DateTime('UTC'),
    name        String,
    labels_hash UInt64,
    app         LowCardinality(String),
    labels      Map(String, String),
    count       UInt64,
    sum         Float64,
    min         Float64,
    max         Float64,
    computed_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(computed_at)
PARTITION BY toYYYYMMDD(minute)
ORDER BY (tenant_id, minute, name, labels_hash, app)
