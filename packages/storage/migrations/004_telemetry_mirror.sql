-- Mirror copies of tenants still on legacy (cutover mirror mode). Their own table, apart from
-- telemetry_shadow: replay writes the shadow and promote swaps it into live, and legacy's data must
-- never ride along. Same structure as live so parity can compare like with like.
CREATE TABLE IF NOT EXISTS telemetry_mirror AS telemetry
