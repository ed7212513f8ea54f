-- Same structure and partitioning as live, so a verified shadow partition can be swapped in with
-- ALTER TABLE telemetry REPLACE PARTITION ... FROM telemetry_shadow.
CREATE TABLE IF NOT EXISTS telemetry_shadow AS telemetry
