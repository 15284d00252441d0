package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"

	"github.com/pressly/goose/v3"
)

var migrationName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,59}$`)

const tenantTemplate = `-- +goose Up
-- Tenant migration: applied to public and to every premium schema, with
-- search_path set to that schema, so leave table names unqualified.
-- A table with a tenant_id column is guarded by migrate in this migration's
-- transaction (RLS enabled and forced, policy tenant_isolation); writing it
-- yourself is fine:
--   ALTER TABLE t ENABLE ROW LEVEL SECURITY; ALTER TABLE t FORCE ROW LEVEL SECURITY;
--   CREATE POLICY tenant_isolation ON t
--     USING (tenant_id = nullif(current_setting('app.current_tenant', true), '')::uuid)
--     WITH CHECK (tenant_id = nullif(current_setting('app.current_tenant', true), '')::uuid);
-- Every key of a tenant table includes tenant_id, first (migrate refuses
-- one that does not; it is also what lets Citus distribute the table):
--   CREATE TABLE t (id uuid NOT NULL DEFAULT gen_random_uuid(),
--     tenant_id uuid NOT NULL, ..., PRIMARY KEY (tenant_id, id));
--   UNIQUE (tenant_id, email);
--   FOREIGN KEY (tenant_id, project_id) REFERENCES projects (tenant_id, id)
-- A table without tenant_id, shared by every tenant, is declared:
--   -- tenantkit:shared t            (read-only to the app role; add writable to let it write)
-- Views need WITH (security_invoker = true); materialized views and undeclared
-- SECURITY DEFINER functions are refused (docs/operations.md, Migrations).
-- Wrap function bodies in -- +goose StatementBegin / -- +goose StatementEnd.
--
-- Expand, then contract: this runs while the previous release serves traffic,
-- and public is migrated before the premium schemas. Only add here (tables,
-- nullable or DEFAULT columns, indexes). Drop or rename a column or table, or
-- tighten a constraint, only in a later release, once no running binary reads
-- the old shape; new code reads a new column from the release after this one.


-- +goose Down

`

const controlTemplate = `-- +goose Up
-- Control-plane migration (schema tenancy): qualify every name with tenancy.
-- Expand, then contract: the previous release runs against this schema, so
-- only add here; drop or rename in a later release, once nothing reads it.


-- +goose Down

`

// runNew writes the next numbered migration with Up and Down sections.
func runNew(args []string, stdout, stderr io.Writer) error {
	var (
		control bool
		dir     string
	)
	fs, err := parseFlags("new", args, stderr, func(fs *flag.FlagSet) {
		fs.BoolVar(&control, "control", false, "control-plane migration (schema tenancy)")
		fs.StringVar(&dir, "dir", "", "migrations directory (default: ./migrations, searched upwards)")
	})
	if err != nil || fs.NArg() != 1 || !migrationName.MatchString(fs.Arg(0)) {
		fmt.Fprintln(stderr, "usage: migrate new [--control] [--dir DIR] NAME   (NAME: lowercase letters, digits and _, starting with a letter)")
		return exitCode(2)
	}
	if dir == "" {
		if dir, err = findMigrationsDir(); err != nil {
			return err
		}
	}
	sub, body := "tenant", tenantTemplate
	if control {
		sub, body = "control", controlTemplate
	}
	dir = filepath.Join(dir, sub)
	next, err := nextVersion(os.DirFS(dir))
	if err != nil {
		return fmt.Errorf("read %s: %w", dir, err)
	}
	path := filepath.Join(dir, fmt.Sprintf("%05d_%s.sql", next, fs.Arg(0)))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(f, body); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "created", path)
	return nil
}

func nextVersion(fsys fs.FS) (int64, error) {
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return 0, err
	}
	if _, err := fs.Stat(fsys, "."); err != nil {
		return 0, err
	}
	var latest int64
	for _, n := range names {
		if v, err := goose.NumericComponent(n); err == nil {
			latest = max(latest, v)
		}
	}
	return latest + 1, nil
}

// findMigrationsDir looks for migrations/tenant from the working directory up.
func findMigrationsDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		candidate := filepath.Join(dir, "migrations")
		if fi, err := os.Stat(filepath.Join(candidate, "tenant")); err == nil && fi.IsDir() {
			return candidate, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no migrations/tenant directory here or above: pass --dir")
		}
		dir = parent
	}
}
