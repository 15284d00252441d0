package tenancy

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/pressly/goose/v3/database"
)

// versionStore is goose's Postgres store for one schema's version table that
// also, in the same transaction as each migration, writes the schema's
// version to tenancy.schema_versions and grants the app role DML on the
// schema's tables. The fleet reads that one table to find the schemas that
// are behind, and it can never claim a schema is newer than it is: a
// migration and its bookkeeping commit or roll back together. Granting there
// too means no moment where a new table exists but the api may not use it.
//
// It also guards the schema after each migration, in that transaction
// (Migrator.guard): a migration that leaves a tenant relation unguarded, in a
// way the guard cannot fix, is refused and rolled back.
type versionStore struct {
	database.Store
	m           *Migrator
	schema      string
	bookkeeping bool // write tenancy.schema_versions (the control plane has it)
	decl        Declarations
	latest      int64 // of the set: its migration's transaction also runs the probe
}

var _ database.StoreExtender = (*versionStore)(nil)

func (s *versionStore) Insert(ctx context.Context, db database.DBTxConn, req database.InsertRequest) error {
	if err := s.Store.Insert(ctx, db, req); err != nil {
		return err
	}
	if req.Version == 0 { // goose creating its version table: nothing migrated yet
		return nil
	}
	if _, err := db.ExecContext(ctx, afterMigrationSQL(s.schema, s.m.AppRole, s.bookkeeping)); err != nil {
		return fmt.Errorf("record and grant schema %s: %w", s.schema, err)
	}
	return s.m.guard(ctx, db, s.schema, s.decl, "migration "+s.decl.File(req.Version), req.Version >= s.latest)
}

func (s *versionStore) Delete(ctx context.Context, db database.DBTxConn, version int64) error {
	if err := s.Store.Delete(ctx, db, version); err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, afterMigrationSQL(s.schema, "", s.bookkeeping)); err != nil {
		return fmt.Errorf("record schema %s: %w", s.schema, err)
	}
	return nil
}

// TableExists keeps goose's catalog lookup instead of its probing fallback.
func (s *versionStore) TableExists(ctx context.Context, db database.DBTxConn) (bool, error) {
	if ext, ok := s.Store.(database.StoreExtender); ok {
		return ext.TableExists(ctx, db)
	}
	return false, errors.ErrUnsupported
}

// afterMigrationSQL sets schema's bookkeeping row to what its version table
// says and grants appRole use of the schema and its sequences (serial
// columns) (either may be left out); rights on tables are GuardSchema's. It is
// one multi-statement string, so it costs one round trip; schema passed
// checkSchemaName and is quoted anyway.
func afterMigrationSQL(schema, appRole string, bookkeeping bool) string {
	s := QuoteIdent(schema)
	var b strings.Builder
	if bookkeeping {
		fmt.Fprintf(&b, `INSERT INTO tenancy.schema_versions (schema_name, version)
			SELECT %s, coalesce(max(version_id), 0) FROM %s.%s
			ON CONFLICT (schema_name) DO UPDATE SET version = excluded.version, updated_at = now();`,
			quoteLiteral(schema), s, VersionTable)
	}
	if appRole != "" {
		role := QuoteIdent(appRole)
		fmt.Fprintf(&b, `GRANT USAGE ON SCHEMA %[1]s TO %[2]s;
			GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %[1]s TO %[2]s;
			REVOKE ALL ON %[1]s.%[3]s FROM %[2]s;`, s, role, VersionTable)
	}
	if b.Len() == 0 {
		return "SELECT 1"
	}
	return b.String()
}
