package tenancy

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/pressly/goose/v3/database"
)

// versionStore is goose's Postgres store for one schema's version table that
// also writes the schema's version to tenancy.schema_versions, in the same
// transaction as the migration. The fleet reads that one table to find the
// schemas that are behind, and it can never claim a schema is newer than it
// is: a migration and its bookkeeping commit or roll back together.
type versionStore struct {
	database.Store
	schema string
}

var _ database.StoreExtender = (*versionStore)(nil)

func (s *versionStore) Insert(ctx context.Context, db database.DBTxConn, req database.InsertRequest) error {
	if err := s.Store.Insert(ctx, db, req); err != nil {
		return err
	}
	return recordVersionOn(ctx, db, s.schema)
}

func (s *versionStore) Delete(ctx context.Context, db database.DBTxConn, version int64) error {
	if err := s.Store.Delete(ctx, db, version); err != nil {
		return err
	}
	return recordVersionOn(ctx, db, s.schema)
}

// TableExists keeps goose's catalog lookup instead of its probing fallback.
func (s *versionStore) TableExists(ctx context.Context, db database.DBTxConn) (bool, error) {
	if ext, ok := s.Store.(database.StoreExtender); ok {
		return ext.TableExists(ctx, db)
	}
	return false, errors.ErrUnsupported
}

// recordVersionOn sets schema's bookkeeping row to what its version table says.
func recordVersionOn(ctx context.Context, db database.DBTxConn, schema string) error {
	_, err := db.ExecContext(ctx, `INSERT INTO tenancy.schema_versions (schema_name, version)
		SELECT $1, coalesce(max(version_id), 0) FROM `+QuoteIdent(schema)+`.`+VersionTable+`
		ON CONFLICT (schema_name) DO UPDATE SET version = excluded.version, updated_at = now()`, schema)
	if err != nil {
		return fmt.Errorf("record version of %s: %w", schema, err)
	}
	return nil
}

func hasBookkeeping(ctx context.Context, db *sql.DB) (bool, error) {
	var ok bool
	if err := db.QueryRowContext(ctx, `SELECT to_regclass('tenancy.schema_versions') IS NOT NULL`).Scan(&ok); err != nil {
		return false, fmt.Errorf("look up tenancy.schema_versions: %w", err)
	}
	return ok, nil
}
