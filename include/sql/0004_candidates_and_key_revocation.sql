-- Deploys that respect time, candidate deployments, and revocable API keys.
--
-- model_versions.logical_date: the point in time a model's training data runs up to (a pipeline run's
-- logical date). A deploy may refuse to put an older model in front of a newer live one.
ALTER TABLE model_versions ADD COLUMN logical_date timestamptz;
-- Models registered before this migration: the journey's source is its run key ("YYYY-MM-DD-<8 hex>",
-- the day validated); a retraining run's ("tenant_model_training:<run id>") trained on what had landed
-- by the time it registered. Anything else stays undated: nobody can say how old it is.
UPDATE model_versions SET logical_date = (left(source, 10) || 'T00:00:00Z')::timestamptz
    WHERE source ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}-[0-9a-f]{8}$';
UPDATE model_versions SET logical_date = created_at WHERE source LIKE 'tenant_model_training:%';

-- A candidate is loaded and answers requests that pin its version, but takes no traffic.
ALTER TABLE model_versions DROP CONSTRAINT model_versions_status_check;
ALTER TABLE model_versions ADD CONSTRAINT model_versions_status_check
    CHECK (status IN ('registered', 'candidate', 'deployed', 'retired'));

ALTER TABLE deployments ADD COLUMN role text NOT NULL DEFAULT 'live' CHECK (role IN ('live', 'candidate'));
ALTER TABLE deployments ADD COLUMN ended_at timestamptz;
ALTER TABLE deployments DROP CONSTRAINT deployments_traffic_percent_check;
ALTER TABLE deployments ADD CONSTRAINT deployments_traffic_percent_check CHECK (
    (role = 'live' AND traffic_percent BETWEEN 1 AND 100) OR (role = 'candidate' AND traffic_percent = 0)
);
-- One live deployment per tenant, as before; one candidate row per version, reused when the same version
-- is validated again, so a re-run adds no row.
DROP INDEX deployments_one_active_idx;
CREATE UNIQUE INDEX deployments_one_live_idx ON deployments (tenant_id) WHERE active AND role = 'live';
CREATE UNIQUE INDEX deployments_one_candidate_row_idx ON deployments (tenant_id, version) WHERE role = 'candidate';

-- The run (X-Run-Key / source) that created a key, so a re-run can find and revoke its own keys.
ALTER TABLE api_keys ADD COLUMN source text;
CREATE INDEX api_keys_tenant_source_idx ON api_keys (tenant_id, source);
