-- +goose Up
-- A tenant's rows cannot outlive it. A request that resolved its tenant just
-- before the tenant was deleted may still be writing: its insert takes a key
-- share lock on the tenant's registry row, so the delete either waits for it
-- and then removes the new row by cascade, or has already committed and the
-- insert fails (the api answers tenant_not_found). NOT VALID: rows written
-- before this migration are not checked, so it never fails on old data, and
-- the cascade covers them all the same. A forker's new tenant table should
-- carry the same constraint, named <table>_tenant_fk.
ALTER TABLE projects ADD CONSTRAINT projects_tenant_fk
    FOREIGN KEY (tenant_id) REFERENCES tenancy.tenants (id) ON DELETE CASCADE NOT VALID;
ALTER TABLE reports ADD CONSTRAINT reports_tenant_fk
    FOREIGN KEY (tenant_id) REFERENCES tenancy.tenants (id) ON DELETE CASCADE NOT VALID;

-- +goose Down
ALTER TABLE reports DROP CONSTRAINT reports_tenant_fk;
ALTER TABLE projects DROP CONSTRAINT projects_tenant_fk;
