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
	// Cell names the cell Owner reaches; "" is the default cell, which holds
	// the control plane.
	Cell string
	// Cells provision tenants placed on other cells, by cell name.
	Cells map[string]*Provisioner
}

// on returns the provisioner of t's cell.
func (p *Provisioner) on(t *Tenant) (*Provisioner, error) {
	c := t.CellOf()
	if c == p.cellName() {
		return p, nil
	}
	if q := p.Cells[c]; q != nil {
		return q, nil
	}
	return nil, fmt.Errorf("tenant %s: cell %q is not configured here: %w", t.ID, c, ErrCellUnavailable)
}

func (p *Provisioner) cellName() string {
	if p.Cell == "" {
		return DefaultCell
	}
	return p.Cell
}

// remote reports whether p's cell is not the control plane's: its tenant
// tables' foreign keys then need the tenant's row in that cell's own
// tenancy.tenants, which lists the tenants placed there (and lets `migrate`
// plan that cell's schemas in one query).
func (p *Provisioner) remote() bool { return p.Cell != "" && p.Cell != DefaultCell }

// Provision creates a tenant's storage on its cell: a migrated schema for
// schema tenants, a database cloned from the cell's migrated template for
// database tenants; rls tenants use the shared tables that already exist.
// On failure nothing is left.
func (p *Provisioner) Provision(ctx context.Context, t *Tenant) error {
	if !ValidIdentifier(t.Identifier) { // the only gate to schema and database names (invariant 5)
		return fmt.Errorf("provision %s: invalid identifier %q", t.ID, t.Identifier)
	}
	c, err := p.on(t)
	if err != nil {
		return fmt.Errorf("provision %s: %w", t.Identifier, err)
	}
	do := c.provisionHere
	if t.Isolation == IsolationDatabase {
		do = c.provisionDatabase
	}
	if !c.remote() {
		return do(ctx, t)
	}
	if err := registerCopy(ctx, c.Owner, t); err != nil {
		return fmt.Errorf("provision %s: %w", t.Identifier, err)
	}
	if err := do(ctx, t); err != nil {
		if derr := unregisterCopy(context.WithoutCancel(ctx), c.Owner, t); derr != nil {
			return fmt.Errorf("%w (and cleanup failed: %v)", err, derr)
		}
		return err
	}
	return activateCopy(ctx, c.Owner, t)
}

func (p *Provisioner) provisionHere(ctx context.Context, t *Tenant) error {
	if t.Isolation != IsolationSchema {
		return nil
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
	if !ValidIdentifier(t.Identifier) {
		return fmt.Errorf("destroy %s: invalid identifier", t.ID)
	}
	c, err := p.on(t)
	if err != nil {
		return fmt.Errorf("destroy %s: %w", t.Identifier, err)
	}
	destroy := c.destroyHere
	if t.Isolation == IsolationDatabase {
		destroy = c.destroyDatabase
	}
	if err := destroy(ctx, t); err != nil {
		return err
	}
	if c.remote() {
		return unregisterCopy(ctx, c.Owner, t)
	}
	return nil
}

func (p *Provisioner) destroyHere(ctx context.Context, t *Tenant) error {
	if t.Isolation == IsolationSchema {
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

// registerCopy records t in the tenancy.tenants of a cell other than the
// control plane's (see remote), as provisioning: `migrate` skips it until
// activateCopy.
func registerCopy(ctx context.Context, owner execer, t *Tenant) error {
	meta := []byte(t.Metadata)
	if len(meta) == 0 {
		meta = []byte(`{}`)
	}
	if _, err := owner.ExecContext(ctx, `INSERT INTO tenancy.tenants (id, identifier, name, status, tier, isolation, cell, metadata)
		VALUES ($1, $2, $3, 'provisioning', $4, $5, $6, $7::text::jsonb)`, t.ID, t.Identifier, t.Name, t.Tier, t.Isolation, t.CellOf(), string(meta)); err != nil {
		if pgCode(err) == "23505" {
			return apperr.Wrap(apperr.Conflict, err, "tenant "+t.Identifier+" is already placed on cell "+t.CellOf())
		}
		return fmt.Errorf("register on cell %s: %w", t.CellOf(), err)
	}
	return nil
}

func activateCopy(ctx context.Context, owner execer, t *Tenant) error {
	if _, err := owner.ExecContext(ctx, `UPDATE tenancy.tenants SET status = 'active' WHERE id = $1`, t.ID); err != nil {
		return fmt.Errorf("provision %s: activate on cell %s: %w", t.Identifier, t.CellOf(), err)
	}
	return nil
}

// unregisterCopy removes the cell's copy; the tenant foreign keys cascade.
func unregisterCopy(ctx context.Context, owner execer, t *Tenant) error {
	if _, err := owner.ExecContext(ctx, `DELETE FROM tenancy.tenants WHERE id = $1`, t.ID); err != nil {
		return fmt.Errorf("destroy %s: unregister from cell %s: %w", t.Identifier, t.CellOf(), err)
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
