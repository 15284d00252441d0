package tenancy

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/your-org/tenantkit/internal/apperr"
)

// Provisioner creates and destroys a tenant's storage. It works as the owner
// role (MIGRATE_DATABASE_URL): the app role may not create schemas or own tables.
type Provisioner struct {
	Migrator *Migrator
	Owner    *sql.DB
}

// Provision creates and migrates a schema tenant's schema; standard tenants
// live in the shared tables that already exist. On failure nothing is left.
func (p *Provisioner) Provision(ctx context.Context, t *Tenant) error {
	if t.Isolation != IsolationSchema {
		return nil
	}
	if !ValidIdentifier(t.Identifier) { // the only gate to schema names (invariant 5)
		return fmt.Errorf("provision %s: invalid identifier %q", t.ID, t.Identifier)
	}
	schema := t.Schema()
	// Created local and migrated, then distributed on Citus (citus.go).
	if err := createLocalSchema(ctx, p.Owner, schema, false); err != nil {
		if pgCode(err) == "42P06" { // duplicate_schema: never adopt or drop a schema we did not create
			return apperr.Wrap(apperr.Conflict, err, "schema "+schema+" already exists")
		}
		return fmt.Errorf("provision %s: create schema: %w", t.Identifier, err)
	}
	_, err := p.Migrator.UpSchema(ctx, schema)
	if err == nil {
		err = DistributeSchema(ctx, p.Owner, schema)
	}
	if err != nil {
		if derr := p.dropSchema(context.WithoutCancel(ctx), schema); derr != nil {
			return fmt.Errorf("provision %s: %w (and cleanup failed: %v)", t.Identifier, err, derr)
		}
		return fmt.Errorf("provision %s: %w", t.Identifier, err)
	}
	return nil
}

func (p *Provisioner) dropSchema(ctx context.Context, schema string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := p.Owner.ExecContext(ctx, `DROP SCHEMA IF EXISTS `+QuoteIdent(schema)+` CASCADE`); err != nil {
		return fmt.Errorf("drop schema %s: %w", schema, err)
	}
	return nil
}

// Destroy removes all of the tenant's data: its schema, or its rows in every
// shared table with a tenant_id column (with the tenant bound, as forced RLS
// hides them from the owner too).
func (p *Provisioner) Destroy(ctx context.Context, t *Tenant) error {
	if t.Isolation == IsolationSchema {
		if !ValidIdentifier(t.Identifier) {
			return fmt.Errorf("destroy %s: invalid identifier", t.ID)
		}
		return p.dropSchema(ctx, t.Schema())
	}
	tables, err := TenantTables(ctx, p.Owner, "public")
	if err != nil {
		return fmt.Errorf("destroy %s: %w", t.Identifier, err)
	}
	tx, err := p.Owner.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("destroy %s: %w", t.Identifier, err)
	}
	defer tx.Rollback()
	// SET LOCAL, propagated: on Citus the policies run on the workers (citus.go).
	if _, err := tx.ExecContext(ctx, `SET LOCAL citus.propagate_set_commands = 'local'; SET LOCAL app.current_tenant = `+quoteLiteral(t.ID.String())); err != nil {
		return fmt.Errorf("destroy %s: bind: %w", t.Identifier, err)
	}
	for _, table := range tables {
		if _, err := tx.ExecContext(ctx, `DELETE FROM public.`+QuoteIdent(table)+` WHERE tenant_id = $1`, t.ID); err != nil {
			return fmt.Errorf("destroy %s: delete from %s: %w", t.Identifier, table, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("destroy %s: commit: %w", t.Identifier, err)
	}
	return nil
}

// TenantTables lists the tables of schema that have a tenant_id column.
func TenantTables(ctx context.Context, db *sql.DB, schema string) ([]string, error) {
	rows, err := db.QueryContext(ctx, `SELECT c.relname FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
		WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') ORDER BY c.relname`, schema)
	if err != nil {
		return nil, fmt.Errorf("list tenant tables of %s: %w", schema, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, err
		}
		out = append(out, name)
	}
	return out, rows.Err()
}
