package tenancy

import (
	"context"
	"fmt"
	"time"

	"github.com/your-org/tenantkit/internal/apperr"
)

// tenantDatabase returns the database name of database tenant t on p's cell
// and a migrator for it.
func (p *Provisioner) tenantDatabase(t *Tenant) (string, *Migrator, error) {
	base, err := DatabaseOf(p.Migrator.OwnerDSN)
	if err != nil {
		return "", nil, err
	}
	name := DatabaseName(base, t.Identifier)
	dsn, err := WithDatabase(p.Migrator.OwnerDSN, name)
	if err != nil {
		return "", nil, err
	}
	m := *p.Migrator
	m.OwnerDSN = dsn
	return name, &m, nil
}

// provisionDatabase creates the tenant's own database on p's cell: a clone of
// the cell's migrated template when `migrate up` made one, else an empty
// database; either way it is then migrated (a no-op on a current clone),
// granted as `migrate up` grants, and given the tenant's registry row its
// foreign keys reference. On failure the database is dropped again.
func (p *Provisioner) provisionDatabase(ctx context.Context, t *Tenant) error {
	name, m, err := p.tenantDatabase(t)
	if err != nil {
		return fmt.Errorf("provision %s: %w", t.Identifier, err)
	}
	// A Citus cell spreads one database over its nodes: a database of the
	// tenant's own would need the extension and the workers registered anew
	// (docs/scaling.md, Citus). Refused before anything is created.
	if v, err := CitusVersion(ctx, p.Owner); err != nil {
		return fmt.Errorf("provision %s: %w", t.Identifier, err)
	} else if v != "" {
		return apperr.Invalid(apperr.FieldError{Field: "isolation",
			Message: "database isolation is not available on a Citus cell: use rls or schema (distributed by Citus)"})
	}
	base, _ := DatabaseOf(p.Migrator.OwnerDSN)
	tmpl := TemplateDatabaseName(base)
	var hasTemplate bool
	if err := p.Owner.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1 AND datistemplate)`, tmpl).Scan(&hasTemplate); err != nil {
		return fmt.Errorf("provision %s: %w", t.Identifier, err)
	}
	create := `CREATE DATABASE ` + QuoteIdent(name)
	if hasTemplate {
		create += ` TEMPLATE ` + QuoteIdent(tmpl)
	}
	for attempt := 0; ; attempt++ {
		_, err = p.Owner.ExecContext(ctx, create)
		// 55006: the template is in use (a concurrent clone or migrate): retry.
		if err == nil || pgCode(err) != "55006" || attempt == 20 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		if pgCode(err) == "42P04" { // duplicate_database: never adopt or drop one we did not create
			return apperr.Wrap(apperr.Conflict, err, "database "+name+" already exists")
		}
		return fmt.Errorf("provision %s: create database: %w", t.Identifier, err)
	}
	err = fill(ctx, m, t)
	if err == nil {
		// The cell's bookkeeping: `migrate up` finds it current in its one plan query.
		var latest int64
		if latest, err = m.LatestTenantVersion(); err == nil {
			_, err = p.Owner.ExecContext(ctx, `INSERT INTO tenancy.schema_versions (schema_name, version) VALUES ($1, $2)
				ON CONFLICT (schema_name) DO UPDATE SET version = excluded.version, updated_at = now()`, databasePrefix+name, latest)
		}
	}
	if err != nil {
		if derr := p.dropDatabase(context.WithoutCancel(ctx), name); derr != nil {
			return fmt.Errorf("provision %s: %w (and cleanup failed: %v)", t.Identifier, err, derr)
		}
		return fmt.Errorf("provision %s: %w", t.Identifier, err)
	}
	return nil
}

// fill migrates a new tenant database and registers the tenant in it.
func fill(ctx context.Context, m *Migrator, t *Tenant) error {
	if _, err := m.UpControl(ctx); err != nil {
		return err
	}
	if _, err := m.UpSchema(ctx, "public"); err != nil {
		return err
	}
	db, err := m.OpenSchemaDB(ControlSchema)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := registerCopy(ctx, db, t); err != nil {
		return err
	}
	return activateCopy(ctx, db, t)
}

func (p *Provisioner) destroyDatabase(ctx context.Context, t *Tenant) error {
	name, _, err := p.tenantDatabase(t)
	if err != nil {
		return fmt.Errorf("destroy %s: %w", t.Identifier, err)
	}
	if err := p.dropDatabase(ctx, name); err != nil {
		return fmt.Errorf("destroy %s: %w", t.Identifier, err)
	}
	if _, err := p.Owner.ExecContext(ctx, `DELETE FROM tenancy.schema_versions WHERE schema_name = $1`, databasePrefix+name); err != nil {
		return fmt.Errorf("destroy %s: forget its version: %w", t.Identifier, err)
	}
	return nil
}

func (p *Provisioner) dropDatabase(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// FORCE ends the app's pooled connections to it, which then fail
	// (and the pool router drops the pool).
	if _, err := p.Owner.ExecContext(ctx, `DROP DATABASE IF EXISTS `+QuoteIdent(name)+` WITH (FORCE)`); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}

// EnsureTemplate creates or brings up to date the cell's template database
// (TemplateDatabaseName) that database tenants are cloned from: the control
// and tenant sets migrated, marked IS_TEMPLATE. `migrate up` calls it.
func (m *Migrator) EnsureTemplate(ctx context.Context) error {
	base, err := DatabaseOf(m.OwnerDSN)
	if err != nil {
		return err
	}
	tmpl := TemplateDatabaseName(base)
	dsn, err := WithDatabase(m.OwnerDSN, tmpl)
	if err != nil {
		return err
	}
	if _, err := EnsureDatabase(ctx, dsn); err != nil {
		return fmt.Errorf("template database: %w", err)
	}
	tm := *m
	tm.OwnerDSN = dsn
	if _, err := tm.UpControl(ctx); err != nil {
		return fmt.Errorf("template database: %w", err)
	}
	if _, err := tm.UpSchema(ctx, "public"); err != nil {
		return fmt.Errorf("template database: %w", err)
	}
	db, err := m.OpenSchemaDB("public")
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `ALTER DATABASE `+QuoteIdent(tmpl)+` IS_TEMPLATE true`); err != nil {
		return fmt.Errorf("template database: %w", err)
	}
	return nil
}
