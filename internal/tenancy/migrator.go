package tenancy

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"regexp"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"
)

// VersionTable is goose's bookkeeping table, one per migrated schema.
const VersionTable = "goose_db_version"

// ControlSchema holds the control plane.
const ControlSchema = "tenancy"

// Migrator applies the embedded migrations as the owner role: the control
// plane to schema tenancy, the tenant set to public and to each premium schema.
type Migrator struct {
	OwnerDSN string // MIGRATE_DATABASE_URL
	AppRole  string // role of DATABASE_URL, granted DML on what is migrated
	Control  fs.FS
	Tenant   fs.FS
	Log      *slog.Logger
}

// OpenSchemaDB opens a one-connection pool of the owner role whose
// search_path is schema, so that unqualified migration SQL lands there. The
// search_path is a startup parameter, so a reconnect cannot lose it; and a
// fresh backend per schema keeps the catalog cache of one backend from
// growing with every schema it touches.
func (m *Migrator) OpenSchemaDB(schema string) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(m.OwnerDSN)
	if err != nil {
		return nil, fmt.Errorf("parse migrate database url: %w", err)
	}
	cfg.RuntimeParams["search_path"] = QuoteIdent(schema)
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = "tenantkit-migrate"
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(1)
	return db, nil
}

// UpControl migrates the control plane and grants the app role what it needs.
func (m *Migrator) UpControl(ctx context.Context) ([]*goose.MigrationResult, error) {
	db, err := m.OpenSchemaDB(ControlSchema)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE SCHEMA IF NOT EXISTS tenancy`); err != nil {
		return nil, fmt.Errorf("create schema tenancy: %w", err)
	}
	p, _, err := m.provider(ctx, db, m.Control, ControlSchema)
	if err != nil {
		return nil, fmt.Errorf("control migrations: %w", err)
	}
	res, err := p.Up(ctx)
	if err != nil {
		return partialApplied(res, err), fmt.Errorf("migrate control plane: %w", err)
	}
	if m.AppRole != "" {
		role := QuoteIdent(m.AppRole)
		if _, err := db.ExecContext(ctx, `GRANT USAGE ON SCHEMA tenancy TO `+role+`;
			GRANT SELECT, INSERT, UPDATE, DELETE ON tenancy.tenants, tenancy.api_keys TO `+role); err != nil {
			return res, fmt.Errorf("grant control plane to %s: %w", m.AppRole, err)
		}
	}
	return res, nil
}

// UpSchema creates schema if needed, brings it to the latest tenant migration,
// records its version in tenancy.schema_versions and grants the app role DML
// on its tables. It is the one code path that applies tenant migrations:
// provisioning, `migrate up` and `migrate tenant` all come through here.
func (m *Migrator) UpSchema(ctx context.Context, schema string) ([]*goose.MigrationResult, error) {
	if err := checkSchemaName(schema); err != nil {
		return nil, err
	}
	db, err := m.OpenSchemaDB(schema)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE SCHEMA IF NOT EXISTS `+QuoteIdent(schema)); err != nil {
		return nil, fmt.Errorf("create schema %s: %w", schema, err)
	}
	p, bookkept, err := m.provider(ctx, db, m.Tenant, schema)
	if err != nil {
		return nil, fmt.Errorf("tenant migrations: %w", err)
	}
	res, err := p.Up(ctx)
	if err != nil {
		return partialApplied(res, err), fmt.Errorf("migrate schema %s: %w", schema, err)
	}
	// Nothing applied means no version row was written in a migration's
	// transaction; record the version anyway, so schemas migrated before the
	// bookkeeping existed (or by `up --all`) join the fast path.
	if bookkept {
		if err := recordVersionOn(ctx, db, schema); err != nil {
			return res, err
		}
	}
	if err := m.grantSchema(ctx, db, schema); err != nil {
		return res, err
	}
	return res, nil
}

func (m *Migrator) grantSchema(ctx context.Context, db *sql.DB, schema string) error {
	if m.AppRole == "" {
		return nil
	}
	s, role := QuoteIdent(schema), QuoteIdent(m.AppRole)
	_, err := db.ExecContext(ctx, `GRANT USAGE ON SCHEMA `+s+` TO `+role+`;
		GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA `+s+` TO `+role+`;
		REVOKE ALL ON `+s+`.`+VersionTable+` FROM `+role)
	if err != nil {
		return fmt.Errorf("grant schema %s to %s: %w", schema, m.AppRole, err)
	}
	return nil
}

// DownSchemaTo reverses migrations in schema down to version, newest first:
// the control set for schema tenancy, the tenant set otherwise.
func (m *Migrator) DownSchemaTo(ctx context.Context, schema string, version int64) ([]*goose.MigrationResult, error) {
	if err := checkSchemaName(schema); err != nil {
		return nil, err
	}
	db, err := m.OpenSchemaDB(schema)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	fsys := m.Tenant
	if schema == ControlSchema {
		fsys = m.Control
	}
	p, _, err := m.provider(ctx, db, fsys, schema)
	if err != nil {
		return nil, err
	}
	res, err := p.DownTo(ctx, version)
	if err != nil {
		return partialApplied(res, err), fmt.Errorf("migrate %s down to %d: %w", schema, version, err)
	}
	return res, nil
}

// LatestTenantVersion is the highest version of the tenant migration set.
func (m *Migrator) LatestTenantVersion() (int64, error) { return latestVersion(m.Tenant) }

// LatestControlVersion is the highest version of the control migration set.
func (m *Migrator) LatestControlVersion() (int64, error) { return latestVersion(m.Control) }

func latestVersion(fsys fs.FS) (int64, error) {
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return 0, fmt.Errorf("list migrations: %w", err)
	}
	var latest int64
	for _, n := range names {
		v, err := goose.NumericComponent(n)
		if err != nil {
			return 0, fmt.Errorf("migration %s: %w", n, err)
		}
		latest = max(latest, v)
	}
	return latest, nil
}

// provider builds a goose provider for schema's own version table. Tenant
// schemas get the bookkeeping store when the control plane has the table
// (a control set without it, as some tests use, still migrates).
func (m *Migrator) provider(ctx context.Context, db *sql.DB, fsys fs.FS, schema string) (_ *goose.Provider, bookkept bool, _ error) {
	if err := checkSchemaName(schema); err != nil {
		return nil, false, err
	}
	base, err := database.NewStore(database.DialectPostgres, schema+"."+VersionTable)
	if err != nil {
		return nil, false, err
	}
	store := base
	if schema != ControlSchema {
		if bookkept, err = hasBookkeeping(ctx, db); err != nil {
			return nil, false, err
		}
		if bookkept {
			store = &versionStore{Store: base, schema: schema}
		}
	}
	p, err := goose.NewProvider(goose.DialectCustom, db, fsys,
		goose.WithStore(store), goose.WithDisableGlobalRegistry(true))
	return p, bookkept, err
}

var plainSchemaRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// checkSchemaName admits only plain lowercase names: goose splices its table
// name into SQL unquoted and looks it up in pg_tables by that spelling.
// Tenant schemas come from validated identifiers and always qualify.
func checkSchemaName(schema string) error {
	if !plainSchemaRE.MatchString(schema) {
		return fmt.Errorf("schema name %q is not a plain lowercase identifier", schema)
	}
	return nil
}

func partialApplied(res []*goose.MigrationResult, err error) []*goose.MigrationResult {
	var partial *goose.PartialError
	if errors.As(err, &partial) {
		return partial.Applied
	}
	return res
}
