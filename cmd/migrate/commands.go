package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/your-org/tenantkit/internal/config"
	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/migrations"
)

type migration struct {
	cfg      config.Config
	owner    *sql.DB
	migrator *tenancy.Migrator
	out, err io.Writer
}

func newMigration(ctx context.Context, cfg config.Config, out, errw io.Writer) (*migration, error) {
	if created, err := tenancy.EnsureDatabase(ctx, cfg.MigrateDatabaseURL); err != nil {
		return nil, err
	} else if created {
		fmt.Fprintln(out, "created database")
	}
	owner, err := sql.Open("pgx", cfg.MigrateDatabaseURL)
	if err != nil {
		return nil, err
	}
	owner.SetMaxOpenConns(4)
	role, _ := cfg.AppRole()
	return &migration{
		cfg: cfg, owner: owner, out: out, err: errw,
		migrator: &tenancy.Migrator{OwnerDSN: cfg.MigrateDatabaseURL, AppRole: role,
			Control: migrations.Control(), Tenant: migrations.Tenant()},
	}, nil
}

var _ = stdlib.GetDefaultDriver // registers the "pgx" database/sql driver

func (m *migration) close() { m.owner.Close() }

func (m *migration) up(ctx context.Context, _ []string) error {
	role, password := m.cfg.AppRole()
	if role != "" {
		note, err := tenancy.EnsureAppRole(ctx, m.owner, role, password)
		if err != nil {
			return err
		}
		if note != "" {
			fmt.Fprintln(m.err, "warning:", note)
		}
	}
	res, err := m.migrator.UpControl(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(m.out, "control plane: %d applied\n", len(res))
	if res, err = m.migrator.UpSchema(ctx, "public"); err != nil {
		return err
	}
	fmt.Fprintf(m.out, "public: %d applied\n", len(res))
	schemas, err := m.premiumSchemas(ctx)
	if err != nil {
		return err
	}
	failed := 0
	for i, s := range schemas {
		res, err := m.migrator.UpSchema(ctx, s)
		if err != nil {
			failed++
			fmt.Fprintf(m.out, "[%d/%d] %s: FAILED: %v\n", i+1, len(schemas), s, err)
			continue
		}
		fmt.Fprintf(m.out, "[%d/%d] %s: %d applied\n", i+1, len(schemas), s, len(res))
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d tenant schemas failed", failed, len(schemas))
	}
	return nil
}

func (m *migration) premiumSchemas(ctx context.Context) ([]string, error) {
	rows, err := m.owner.QueryContext(ctx, `SELECT identifier FROM tenancy.tenants
		WHERE isolation = 'schema' AND status <> 'provisioning' ORDER BY identifier`)
	if err != nil {
		return nil, fmt.Errorf("list premium tenants: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		if tenancy.ValidIdentifier(id) {
			out = append(out, tenancy.SchemaName(id))
		}
	}
	return out, rows.Err()
}

func (m *migration) status(ctx context.Context, _ []string) error {
	schemas, err := m.premiumSchemas(ctx)
	if err != nil {
		return err
	}
	for _, s := range append([]string{"tenancy", "public"}, schemas...) {
		var v sql.NullInt64
		_ = m.owner.QueryRowContext(ctx, `SELECT max(version_id) FROM `+tenancy.QuoteIdent(s)+`.`+tenancy.VersionTable+` WHERE is_applied`).Scan(&v)
		fmt.Fprintf(m.out, "%-40s %d\n", s, v.Int64)
	}
	return nil
}

func (m *migration) down(ctx context.Context, args []string) error {
	var to int64
	fs, err := parseFlags("down", args, func(fs *flag.FlagSet) { fs.Int64Var(&to, "to", -1, "target version") })
	if err != nil {
		return exitCode(2)
	}
	_ = fs
	if to < 0 {
		fmt.Fprintln(m.err, "down needs --to N")
		return exitCode(2)
	}
	schemas, err := m.premiumSchemas(ctx)
	if err != nil {
		return err
	}
	for _, s := range append(schemas, "public") {
		res, err := m.migrator.DownSchemaTo(ctx, s, to)
		if err != nil {
			return err
		}
		fmt.Fprintf(m.out, "%s: %d reverted\n", s, len(res))
	}
	return nil
}

func (m *migration) tenant(ctx context.Context, args []string) error {
	if len(args) != 1 {
		fmt.Fprintln(m.err, "tenant needs one tenant id or identifier")
		return exitCode(2)
	}
	store := &tenancy.PGStore{DB: m.owner}
	var (
		t   *tenancy.Tenant
		err error
	)
	if id, perr := uuid.Parse(args[0]); perr == nil {
		t, err = store.TenantByID(ctx, id)
	} else {
		t, err = store.TenantByIdentifier(ctx, args[0])
	}
	if err != nil {
		return fmt.Errorf("tenant %s: %w", args[0], err)
	}
	if t.Isolation != tenancy.IsolationSchema {
		fmt.Fprintf(m.out, "%s is a shared-table (rls) tenant: migrated with public\n", t.Identifier)
		return nil
	}
	res, err := m.migrator.UpSchema(ctx, t.Schema())
	if err != nil {
		return err
	}
	fmt.Fprintf(m.out, "%s: %d applied\n", t.Schema(), len(res))
	return nil
}

var migrationName = regexp.MustCompile(`^[a-z0-9_]{1,60}$`)

func runNew(args []string, out io.Writer) error {
	var control bool
	var dir string
	fs, err := parseFlags("new", args, func(fs *flag.FlagSet) {
		fs.BoolVar(&control, "control", false, "control-plane migration (schema tenancy)")
		fs.StringVar(&dir, "dir", "migrations", "migrations directory")
	})
	if err != nil || fs.NArg() != 1 || !migrationName.MatchString(fs.Arg(0)) {
		fmt.Fprintln(out, "usage: migrate new [--control] NAME   (NAME: lowercase letters, digits, _)")
		return exitCode(2)
	}
	sub := "tenant"
	if control {
		sub = "control"
	}
	dir = filepath.Join(dir, sub)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("read %s: %w", dir, err)
	}
	next := 1
	for _, e := range entries {
		var n int
		if _, err := fmt.Sscanf(e.Name(), "%05d_", &n); err == nil && n >= next {
			next = n + 1
		}
	}
	path := filepath.Join(dir, fmt.Sprintf("%05d_%s.sql", next, fs.Arg(0)))
	body := "-- +goose Up\n-- Unqualified names: applied to public and every premium schema.\n-- A table with tenant_id needs RLS enabled, forced and a tenant_isolation policy.\n\n-- +goose Down\n"
	if control {
		body = "-- +goose Up\n-- Qualify names with the tenancy schema.\n\n-- +goose Down\n"
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		return err
	}
	fmt.Fprintln(out, "created", path, "at", time.Now().UTC().Format(time.RFC3339))
	return nil
}

var _ = strings.TrimSpace
