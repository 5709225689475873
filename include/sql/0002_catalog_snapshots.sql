-- Real tenants' catalogs: only item_id is required, categories are the tenant's own taxonomy, and every
-- catalog upload is kept as a snapshot, so a model is trained, indexed and queried over the catalog of its
-- own upload rather than the union of every catalog the tenant ever sent. Existing rows are kept as they are.

-- title, category and price are optional (NULL when the tenant's catalog has none).
ALTER TABLE items
    ALTER COLUMN title DROP NOT NULL,
    ALTER COLUMN category DROP NOT NULL,
    ALTER COLUMN price DROP NOT NULL;

-- One row per item of one catalog upload; re-registering the same upload replaces its snapshot. `items`
-- stays the tenant's merged, latest-wins catalog (item lookups, the popularity fallback, data quality).
CREATE TABLE catalog_items (
    upload_id   text NOT NULL REFERENCES data_uploads (id),
    tenant_id   text NOT NULL REFERENCES tenants (id),
    item_id     text NOT NULL,
    title       text,
    category    text,
    price       numeric(12, 2) CHECK (price > 0),
    image_url   text NOT NULL DEFAULT '',
    PRIMARY KEY (upload_id, item_id)
);
CREATE INDEX catalog_items_tenant_idx ON catalog_items (tenant_id);

-- The catalog snapshot a model was trained on: serving takes its items' categories from there. NULL for
-- models registered without one (before this migration, or by callers that do not say): those use `items`.
ALTER TABLE model_versions ADD COLUMN catalog_upload_id text REFERENCES data_uploads (id);
