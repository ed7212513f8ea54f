-- One row per (replay run, log partition): what `ingestctl replay` read into which shadow table,
-- by whom, and what it inserted. A plan looks here to say "this range was replayed before".
-- A run writes its row when it starts (status running) and again when it ends; the later
-- updated_at wins (read with FINAL). No dedup token: every write here is a new fact.
CREATE TABLE IF NOT EXISTS replay_runs
(
    run_id        String,
    topic         String,
    log_partition UInt32,
    target        LowCardinality(String),
    tenant        String,
    first_offset  UInt64,
    last_offset   UInt64,
    status        LowCardinality(String),
    who           String,
    started_at    DateTime64(3, 'UTC'),
    updated_at    DateTime64(3, 'UTC'),
    read_entries  UInt64,
    inserted      UInt64,
    skipped       UInt64,
    dead_lettered UInt64
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (topic, log_partition, run_id)
