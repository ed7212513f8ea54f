-- Minutes loaded before the view existed are marked once, so the first refreshes compute them too.
INSERT INTO telemetry_rollup_dirty (tenant_id, minute, marked_at)
SELECT DISTINCT tenant_id, toStartOfMinute(ts), now64(3) FROM telemetry
