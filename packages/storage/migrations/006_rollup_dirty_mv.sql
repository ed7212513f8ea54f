-- Fires on every INSERT into live (the loader's); REPLACE PARTITION and DELETE do not fire it, so
-- promote and the drill's delete mark their minutes themselves (packages/storage/src/rollups.ts).
CREATE MATERIALIZED VIEW IF NOT EXISTS telemetry_rollup_dirty_mv TO telemetry_rollup_dirty AS
SELECT tenant_id, toStartOfMinute(ts) AS minute, now64(3) AS marked_at
FROM telemetry
GROUP BY tenant_id, minute
