-- +goose Up
-- Bookkeeping for `migrate up`: the tenant-migration version of public and of
-- every premium schema, written by tenancy.Migrator in the same transaction as
-- each migration of that schema (and after every successful up). One query
-- over this table tells which schemas are behind, so a no-op run over
-- thousands of tenants opens no connection per tenant. The app role has no
-- grant here.
CREATE TABLE tenancy.schema_versions (
    schema_name text        PRIMARY KEY,
    version     bigint      NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE tenancy.schema_versions;
