-- Rate-limit plans: how many requests per sliding window one API key of a tenant may make.
--
-- A tenant is on one plan (its keys' limit); a key may carry its own plan instead, e.g. the journey's
-- short-lived 429-probe key on the tiny "probe" plan, so probing never needs to burst a production limit.
-- A tenant given its own figures through the admin API gets a plan of its own, "custom-<slug>".
CREATE TABLE rate_plans (
    name         text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,69}$'),
    requests     integer NOT NULL CHECK (requests >= 1),
    window_s     double precision NOT NULL CHECK (window_s > 0 AND window_s <= 86400),
    description  text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
-- default: 20,000 per 10 s per key (2,000 req/s), the README's "Rate-limit plans" says why.
INSERT INTO rate_plans (name, requests, window_s, description) VALUES
    ('default', 20000, 10, 'production storefront key: 2,000 req/s sustained, about half of one API process'),
    ('gateway', 60, 60, 'the API-gateway style limit: 60 requests per minute'),
    ('probe', 5, 60, 'tiny plan for short-lived keys that probe the 429 contract');

ALTER TABLE tenants ADD COLUMN plan text NOT NULL DEFAULT 'default' REFERENCES rate_plans (name);
ALTER TABLE api_keys ADD COLUMN plan text REFERENCES rate_plans (name);
