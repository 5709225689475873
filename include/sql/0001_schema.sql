-- The reference platform's application schema: tenants and their keys, catalog, ingested
-- interactions, registered data uploads, model versions and deployments, and the audit trail.
-- Applied by include/recsys/migrate.py inside one transaction, so no BEGIN/COMMIT here.

CREATE TABLE tenants (
    id          text PRIMARY KEY,
    slug        text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    name        text NOT NULL,
    email       text NOT NULL,
    status      text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- key_hash is the SHA-256 hex of the key; the key itself is shown once and never stored.
CREATE TABLE api_keys (
    id          text PRIMARY KEY,
    tenant_id   text NOT NULL REFERENCES tenants (id),
    name        text NOT NULL,
    key_prefix  text NOT NULL,
    key_hash    text NOT NULL UNIQUE CHECK (key_hash ~ '^[0-9a-f]{64}$'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
CREATE INDEX api_keys_tenant_idx ON api_keys (tenant_id);

CREATE TABLE items (
    tenant_id   text NOT NULL REFERENCES tenants (id),
    item_id     text NOT NULL,
    title       text NOT NULL,
    category    text NOT NULL,
    price       numeric(12, 2) NOT NULL CHECK (price > 0),
    image_url   text NOT NULL DEFAULT '',
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, item_id)
);

-- event_id is the idempotency key of ingestion: a re-delivered message upserts the same row.
CREATE TABLE interactions (
    event_id          text PRIMARY KEY,
    tenant_id         text NOT NULL REFERENCES tenants (id),
    user_id           text NOT NULL,
    item_id           text NOT NULL,
    interaction_type  text NOT NULL CHECK (interaction_type IN ('view', 'click', 'add_to_cart', 'purchase')),
    ts                timestamptz NOT NULL,
    source            text NOT NULL,
    kafka_partition   integer NOT NULL,
    kafka_offset      bigint NOT NULL,
    ingested_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX interactions_tenant_source_idx ON interactions (tenant_id, source);
CREATE INDEX interactions_tenant_user_idx ON interactions (tenant_id, user_id);

-- Rows present per tenant and upload/run key, recounted by the worker after each batch.
CREATE TABLE ingest_progress (
    tenant_id    text NOT NULL REFERENCES tenants (id),
    source       text NOT NULL,
    rows_landed  bigint NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, source)
);

CREATE TABLE data_uploads (
    id          text PRIMARY KEY,
    tenant_id   text NOT NULL REFERENCES tenants (id),
    kind        text NOT NULL CHECK (kind IN ('items', 'users', 'interactions')),
    bucket      text NOT NULL,
    object_key  text NOT NULL,
    rows        bigint NOT NULL CHECK (rows >= 0),
    sha256      text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    source      text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, bucket, object_key)
);

CREATE TABLE model_versions (
    tenant_id     text NOT NULL REFERENCES tenants (id),
    version       text NOT NULL,
    status        text NOT NULL DEFAULT 'registered' CHECK (status IN ('registered', 'deployed', 'retired')),
    metrics       jsonb NOT NULL DEFAULT '{}'::jsonb,
    artifact_uri  text NOT NULL,
    source        text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, version)
);

CREATE TABLE deployments (
    id               text PRIMARY KEY,
    tenant_id        text NOT NULL,
    version          text NOT NULL,
    traffic_percent  integer NOT NULL CHECK (traffic_percent BETWEEN 1 AND 100),
    deployed_at      timestamptz NOT NULL DEFAULT now(),
    active           boolean NOT NULL DEFAULT true,
    FOREIGN KEY (tenant_id, version) REFERENCES model_versions (tenant_id, version)
);
-- At most one active deployment per tenant; the API reloads it on startup.
CREATE UNIQUE INDEX deployments_one_active_idx ON deployments (tenant_id) WHERE active;

CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    ts          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,
    tenant_id   text,
    action      text NOT NULL,
    object      text,
    details     jsonb NOT NULL DEFAULT '{}'::jsonb,
    request_id  text
);
CREATE INDEX audit_log_tenant_action_ts_idx ON audit_log (tenant_id, action, ts);
CREATE INDEX audit_log_source_idx ON audit_log ((details ->> 'source'));

-- The audit trail is evidence: nothing may rewrite or remove it, not even the application's role.
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP;
END;
$$;
CREATE TRIGGER audit_log_no_update_delete
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate
    BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
