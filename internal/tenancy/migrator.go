package tenancy

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
)

// VersionTable is goose's bookkeeping table, one per migrated schema.
const VersionTable = "goose_db_version"

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
// search_path is schema, so that unqualified migration SQL lands there.
func (m *Migrator) OpenSchemaDB(schema string) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(m.OwnerDSN)
	if err != nil {
		return nil, fmt.Errorf("parse migrate database url: %w", err)
	}
	cfg.RuntimeParams["search_path"] = QuoteIdent(schema)
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(1)
	return db, nil
}

func (m *Migrator) provider(db *sql.DB, fsys fs.FS, table string) (*goose.Provider, error) {
	return goose.NewProvider(goose.DialectPostgres, db, fsys,
		goose.WithTableName(table), goose.WithDisableGlobalRegistry(true))
}

// UpControl migrates the control plane and grants the app role what it needs.
func (m *Migrator) UpControl(ctx context.Context) ([]*goose.MigrationResult, error) {
	db, err := m.OpenSchemaDB("tenancy")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE SCHEMA IF NOT EXISTS tenancy`); err != nil {
		return nil, fmt.Errorf("create schema tenancy: %w", err)
	}
	p, err := m.provider(db, m.Control, "tenancy."+VersionTable)
	if err != nil {
		return nil, fmt.Errorf("control migrations: %w", err)
	}
	res, err := p.Up(ctx)
	if err != nil {
		return res, fmt.Errorf("migrate control plane: %w", err)
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

// UpSchema creates schema if needed, brings it to the latest tenant migration
// and grants the app role DML on its tables. Provisioning and `migrate up`
// both come through here.
func (m *Migrator) UpSchema(ctx context.Context, schema string) ([]*goose.MigrationResult, error) {
	db, err := m.OpenSchemaDB(schema)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return m.upSchema(ctx, db, schema)
}

func (m *Migrator) upSchema(ctx context.Context, db *sql.DB, schema string) ([]*goose.MigrationResult, error) {
	if _, err := db.ExecContext(ctx, `CREATE SCHEMA IF NOT EXISTS `+QuoteIdent(schema)); err != nil {
		return nil, fmt.Errorf("create schema %s: %w", schema, err)
	}
	p, err := m.provider(db, m.Tenant, schema+"."+VersionTable)
	if err != nil {
		return nil, fmt.Errorf("tenant migrations: %w", err)
	}
	res, err := p.Up(ctx)
	if err != nil {
		var partial *goose.PartialError
		if errors.As(err, &partial) {
			res = partial.Applied
		}
		return res, fmt.Errorf("migrate schema %s: %w", schema, err)
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

// DownSchemaTo reverses tenant migrations in schema down to version.
func (m *Migrator) DownSchemaTo(ctx context.Context, schema string, version int64) ([]*goose.MigrationResult, error) {
	db, err := m.OpenSchemaDB(schema)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	fsys, table := m.Tenant, schema+"."+VersionTable
	if schema == "tenancy" {
		fsys = m.Control
	}
	p, err := m.provider(db, fsys, table)
	if err != nil {
		return nil, err
	}
	res, err := p.DownTo(ctx, version)
	if err != nil {
		return res, fmt.Errorf("migrate %s down to %d: %w", schema, version, err)
	}
	return res, nil
}
