-- +goose NO TRANSACTION
-- +goose Up
-- Every key of a tenant table leads with tenant_id (docs/scaling.md, Citus;
-- docs/security.md, invariant 12): a unique key without it answers for every
-- tenant at once (a duplicate in another tenant is a visible conflict), and
-- Citus can distribute a table by tenant_id only when its primary key, unique
-- constraints and foreign keys include it.
--
-- Safe on a running system: the new index is built CONCURRENTLY (reads and
-- writes go on; it runs outside a transaction, hence NO TRANSACTION), then
-- one ALTER swaps the primary key onto it. That ALTER takes an ACCESS
-- EXCLUSIVE lock only for a catalog change: both columns are already NOT
-- NULL, so nothing is scanned; lock_timeout makes it give up (run migrate up
-- again) rather than queue every query of the table behind a long
-- transaction. On a premium schema the tables are one tenant's: milliseconds.
-- Queries by id alone keep an index: the row level security policy adds
-- tenant_id = the bound tenant, which the new key leads with.
-- If a run stops between the two statements, an INVALID index may be left:
-- DROP INDEX it and run migrate up again.
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS projects_tenant_key ON projects (tenant_id, id);
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS reports_tenant_key ON reports (tenant_id, id);
SET lock_timeout = '5s';
ALTER TABLE projects DROP CONSTRAINT projects_pkey, ADD CONSTRAINT projects_pkey PRIMARY KEY USING INDEX projects_tenant_key;
ALTER TABLE reports DROP CONSTRAINT reports_pkey, ADD CONSTRAINT reports_pkey PRIMARY KEY USING INDEX reports_tenant_key;
RESET lock_timeout;

-- +goose Down
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS reports_id_key ON reports (id);
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS projects_id_key ON projects (id);
SET lock_timeout = '5s';
ALTER TABLE reports DROP CONSTRAINT reports_pkey, ADD CONSTRAINT reports_pkey PRIMARY KEY USING INDEX reports_id_key;
ALTER TABLE projects DROP CONSTRAINT projects_pkey, ADD CONSTRAINT projects_pkey PRIMARY KEY USING INDEX projects_id_key;
RESET lock_timeout;
