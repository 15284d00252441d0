-- +goose Up
CREATE TABLE tenancy.tenants (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    identifier  text        NOT NULL UNIQUE CHECK (identifier ~ '^[a-z][a-z0-9-]{1,30}[a-z0-9]$'),
    name        text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    status      text        NOT NULL DEFAULT 'provisioning'
                            CHECK (status IN ('provisioning', 'active', 'suspended')),
    tier        text        NOT NULL CHECK (tier IN ('premium', 'standard')),
    isolation   text        NOT NULL CHECK (isolation IN ('schema', 'rls')),
    metadata    jsonb       NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(metadata) = 'object'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
-- Newest-first keyset paging.
CREATE INDEX tenants_created_idx ON tenancy.tenants (created_at DESC, id DESC);
CREATE INDEX tenants_status_tier_idx ON tenancy.tenants (status, tier);

-- Only a SHA-256 of each key is stored; keys are 256-bit random, so a fast hash
-- is safe, and lookups go by the unique index on it, never by prefix or substring.
CREATE TABLE tenancy.api_keys (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id   uuid        NOT NULL REFERENCES tenancy.tenants (id) ON DELETE CASCADE,
    name        text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    prefix      text        NOT NULL,
    hash        bytea       NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
CREATE INDEX api_keys_tenant_idx ON tenancy.api_keys (tenant_id);

-- +goose Down
DROP TABLE tenancy.api_keys;
DROP TABLE tenancy.tenants;
