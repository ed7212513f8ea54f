-- The refresher's progress: markers up to `watermark` have been read (the latest row wins).
CREATE TABLE IF NOT EXISTS telemetry_rollup_state
(
    name      String,
    watermark DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(watermark)
ORDER BY name
