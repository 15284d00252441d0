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
// search_path is a startup parameter, so a reconnect cannot lose it.
func (m *Migrator) OpenSchemaDB(schema string) (*sql.DB, error) {
	cfg, err := m.connConfig()
	if err != nil {
		return nil, err
	}
	cfg.RuntimeParams["search_path"] = QuoteIdent(schema)
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(1)
	return db, nil
}

func (m *Migrator) connConfig() (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(m.OwnerDSN)
	if err != nil {
		return nil, fmt.Errorf("parse migrate database url: %w", err)
	}
	// goose's SQL names each schema's version table, so a statement cache
	// would only add a prepare round trip to nearly every statement.
	cfg.DefaultQueryExecMode = pgx.QueryExecModeExec
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = "tenantkit-migrate"
	}
	if cfg.AfterConnect == nil {
		cfg.AfterConnect = refuseBehindPooler
	}
	return cfg, nil
}

// UpControl migrates the control plane and grants the app role what it needs.
func (m *Migrator) UpControl(ctx context.Context) ([]*goose.MigrationResult, error) {
	db, err := m.OpenSchemaDB(ControlSchema)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	// Local even where Citus shards new schemas (citus.go).
	if err := createLocalSchema(ctx, db, ControlSchema, true); err != nil {
		return nil, fmt.Errorf("create schema tenancy: %w", err)
	}
	p, err := m.provider(db, m.Control, ControlSchema, nil)
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
			GRANT SELECT, INSERT, UPDATE, DELETE ON tenancy.tenants, tenancy.api_keys TO `+role+`;
			-- A control set that stops before these tables (tests, a down) has none.
			DO $tk$ BEGIN
				IF to_regclass('tenancy.audit_events') IS NOT NULL THEN
					GRANT SELECT, INSERT ON tenancy.audit_events TO `+role+`;
					REVOKE UPDATE, DELETE, TRUNCATE ON tenancy.audit_events FROM `+role+`;
				END IF;
				IF to_regclass('tenancy.operations') IS NOT NULL THEN
					GRANT SELECT, INSERT, UPDATE ON tenancy.operations TO `+role+`;
				END IF;
			END $tk$`); err != nil {
			return res, fmt.Errorf("grant control plane to %s: %w", m.AppRole, err)
		}
		if err := RevokeTemp(ctx, db, m.AppRole); err != nil {
			return res, err
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
	return m.upSchemaOn(ctx, db, schema)
}

// upSchemaOn is UpSchema on a connection whose search_path is schema: the
// fleet passes its reused connections, UpSchema a fresh one.
func (m *Migrator) upSchemaOn(ctx context.Context, db *sql.DB, schema string) ([]*goose.MigrationResult, error) {
	bookkept, err := m.prepare(ctx, db, schema, true)
	if err != nil {
		return nil, err
	}
	decl, err := ParseDeclarations(m.Tenant)
	if err != nil {
		return nil, fmt.Errorf("tenant migrations: %w", err)
	}
	latest, err := m.LatestTenantVersion()
	if err != nil {
		return nil, err
	}
	vs := &versionStore{m: m, schema: schema, bookkeeping: bookkept, decl: decl, latest: latest}
	p, err := m.provider(db, m.Tenant, schema, vs)
	if err != nil {
		return nil, fmt.Errorf("tenant migrations: %w", err)
	}
	res, err := p.Up(ctx)
	if err != nil {
		return partialApplied(res, err), fmt.Errorf("migrate schema %s: %w", schema, err)
	}
	// Each applied migration recorded the version, granted and guarded in
	// its own transaction. A schema that had nothing to apply gets the same
	// now: that brings schemas migrated before the bookkeeping existed (or
	// by `up --all`) onto the fast path, re-grants, and checks its guard.
	if len(res) == 0 {
		if err := m.afterNothingApplied(ctx, db, schema, bookkept, decl); err != nil {
			return res, err
		}
	}
	return res, nil
}

func (m *Migrator) afterNothingApplied(ctx context.Context, db *sql.DB, schema string, bookkept bool, decl Declarations) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("record and grant schema %s: %w", schema, err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	if _, err := tx.ExecContext(ctx, afterMigrationSQL(schema, m.AppRole, bookkept)); err != nil {
		return fmt.Errorf("record and grant schema %s: %w", schema, err)
	}
	if err := m.guard(ctx, tx, schema, decl, "schema "+schema+" (no migration to apply)", true); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("record and grant schema %s: %w", schema, err)
	}
	return nil
}

// guard runs, in the migration's transaction, what makes tenant relations
// safe by construction (docs/security.md, invariants 4 and 12): GuardSchema
// adds what a tenant table lacks of its row level security, CheckSchemas
// refuses what cannot be added (a view without security_invoker, a
// materialized view, a SECURITY DEFINER function, a policy other than the
// isolation policy, an undeclared table without tenant_id) and
// ProbeIsolation checks what the policies allow (with probe: the last
// migration of the set, so provisioning a schema probes it once). Any problem is an
// *IsolationError naming the migration, the relation and the fix; the caller
// rolls the transaction back.
func (m *Migrator) guard(ctx context.Context, q queryer, schema string, decl Declarations, what string, probe bool) error {
	guarded, err := GuardSchema(ctx, q, schema, m.AppRole, decl)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if len(guarded) > 0 && m.Log != nil {
		m.Log.Info("guarded tenant tables: row level security enabled and forced, isolation policy added where missing",
			"tables", guarded, "after", what)
	}
	problems, err := CheckSchemas(ctx, q, []string{schema}, m.AppRole, decl)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if len(problems) == 0 && probe {
		// Keys only at the end of the set: a migration in between may still
		// be reshaping them (00004_tenant_keys.sql does so for 00001's).
		if problems, err = CheckKeys(ctx, q, []string{schema}, decl); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	if len(problems) == 0 && probe {
		if problems, err = probeWith(ctx, q, schema, m.AppRole, decl); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	if len(problems) > 0 {
		return &IsolationError{Where: what + " in schema " + schema, Problems: problems}
	}
	return nil
}

// prepare checks, in one round trip, that the connection's search_path
// points at schema (creating it when asked) and whether the control plane has
// the bookkeeping table.
func (m *Migrator) prepare(ctx context.Context, db *sql.DB, schema string, create bool) (bookkept bool, err error) {
	var current sql.NullString
	probe := func() error {
		return db.QueryRowContext(ctx, `SELECT to_regclass('tenancy.schema_versions') IS NOT NULL, current_schema()`).Scan(&bookkept, &current)
	}
	if err := probe(); err != nil {
		return false, fmt.Errorf("prepare schema %s: %w", schema, err)
	}
	if !current.Valid && create { // no schema on the search_path yet
		if err := createLocalSchema(ctx, db, schema, true); err != nil {
			return false, fmt.Errorf("create schema %s: %w", schema, err)
		}
		if err := probe(); err != nil {
			return false, fmt.Errorf("prepare schema %s: %w", schema, err)
		}
	}
	// Unqualified migration SQL must land in schema: refuse a connection
	// whose search_path startup parameter was dropped (a pooler does that).
	if current.String != schema {
		return false, fmt.Errorf("migrate %s: the connection's schema is %q, not %q: connect MIGRATE_DATABASE_URL to PostgreSQL directly, not through a transaction pooler",
			schema, current.String, schema)
	}
	return bookkept, nil
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
	return m.downSchemaOn(ctx, db, schema, version)
}

func (m *Migrator) downSchemaOn(ctx context.Context, db *sql.DB, schema string, version int64) ([]*goose.MigrationResult, error) {
	var err error
	fsys, bookkept := m.Control, false
	if schema != ControlSchema {
		if bookkept, err = m.prepare(ctx, db, schema, false); err != nil {
			return nil, err
		}
		fsys = m.Tenant
	}
	var store *versionStore
	if bookkept {
		store = &versionStore{m: m, schema: schema, bookkeeping: true}
	}
	p, err := m.provider(db, fsys, schema, store)
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

// provider builds a goose provider for schema's own version table; with vs,
// its store also keeps tenancy.schema_versions, the app role's grants and
// the guard in step, inside each migration's transaction.
func (m *Migrator) provider(db *sql.DB, fsys fs.FS, schema string, vs *versionStore) (*goose.Provider, error) {
	if err := checkSchemaName(schema); err != nil {
		return nil, err
	}
	base, err := database.NewStore(database.DialectPostgres, schema+"."+VersionTable)
	if err != nil {
		return nil, err
	}
	store := base
	if vs != nil {
		vs.Store = base
		store = vs
	}
	return goose.NewProvider(goose.DialectCustom, db, fsys,
		goose.WithStore(store), goose.WithDisableGlobalRegistry(true))
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
