-- Interactions are keyed by (tenant_id, event_id): an event id is the tenant's own numbering, so two
-- tenants that both send events 1, 2, 3 both land in full, and an upsert can only ever reach its own
-- tenant's rows. Existing rows stay as they are: unique by event_id, they are unique per tenant too.
ALTER TABLE interactions DROP CONSTRAINT interactions_pkey;
ALTER TABLE interactions ADD CONSTRAINT interactions_pkey PRIMARY KEY (tenant_id, event_id);
