-- +goose Up
-- Placement (docs/scaling.md, "Cells"): the Postgres cluster a tenant lives
-- on, and isolation 'database' (a database of its own on that cell). Every
-- existing tenant lives on the default cell, in its current isolation.
ALTER TABLE tenancy.tenants
    ADD COLUMN cell text NOT NULL DEFAULT 'default' CHECK (cell ~ '^[a-z][a-z0-9_]{0,30}$');
ALTER TABLE tenancy.tenants DROP CONSTRAINT tenants_isolation_check;
ALTER TABLE tenancy.tenants ADD CONSTRAINT tenants_isolation_check CHECK (isolation IN ('schema', 'rls', 'database'));
-- The placement policy counts tenants per cell and isolation.
CREATE INDEX tenants_cell_isolation_idx ON tenancy.tenants (cell, isolation);

-- +goose Down
DROP INDEX tenancy.tenants_cell_isolation_idx;
ALTER TABLE tenancy.tenants DROP CONSTRAINT tenants_isolation_check;
ALTER TABLE tenancy.tenants ADD CONSTRAINT tenants_isolation_check CHECK (isolation IN ('schema', 'rls'));
ALTER TABLE tenancy.tenants DROP COLUMN cell;
