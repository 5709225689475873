-- The pipeline's run history: one row per DAG, tenant and logical date, written by every run (passed or
-- failed) and replaced by a re-run or backfill of the same day (plugins/hooks/history.py upserts on the key).
-- Figures are JSONB so a stage or a model metric added later flows in without a migration.
CREATE TABLE runs (
    dag_id        text        NOT NULL,
    tenant        text        NOT NULL,
    logical_date  date        NOT NULL,
    run_id        text        NOT NULL,
    -- Airflow's DagRunType value: scheduled, manual, backfill (or asset_triggered).
    run_type      text        NOT NULL,
    run_key       text        NOT NULL,
    success       boolean     NOT NULL,
    failed_stage  text,
    -- {"n_users": .., "n_items": .., "n_interactions": ..} for generated data, NULL for a tenant's own files:
    -- a baseline compares like with like.
    scale         jsonb,
    -- {"<stage>": {"status", "duration_s", "counts", "evaluated", "unsuccessful"}}
    stages        jsonb       NOT NULL,
    -- every numeric figure report.json's model section carries (NDCG@10, Recall@10, lift, ...), and the version
    model         jsonb       NOT NULL DEFAULT '{}'::jsonb,
    -- latency percentiles, requests, errors, error_rate of the recommendation sample
    recommendations jsonb     NOT NULL DEFAULT '{}'::jsonb,
    drills        jsonb,
    -- {"<table>": {"key", "sha256", "rows"}}: the upload's objects, the previous upload of the next day's drift check
    checksums     jsonb,
    -- the upload's profile (interaction-type mix, popularity deciles) and the drift found against the previous one
    upload        jsonb,
    trend         jsonb,
    written_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dag_id, tenant, logical_date)
);

-- The trailing baseline: a tenant's latest successful days before a date.
CREATE INDEX runs_baseline ON runs (dag_id, tenant, logical_date DESC) WHERE success;
