// Package benchdb prepares the benchmarks' database: dropped and recreated,
// migrated as the owner, with the app role and tenants seeded with projects.
package benchdb

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"

	"github.com/your-org/tenantkit/internal/citusdb"
	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/migrations"
)

// DB is a freshly migrated benchmark database.
type DB struct {
	OwnerURL, AppURL string
	Owner            *sql.DB
	Migrator         *tenancy.Migrator
	Lifecycle        *tenancy.Lifecycle
}

// Fresh drops and recreates database name on the server of serverURL (a
// superuser), creates appRole and migrates the control plane and public.
func Fresh(ctx context.Context, serverURL, name, appRole string) (*DB, error) {
	admin, err := sql.Open("pgx", serverURL)
	if err != nil {
		return nil, err
	}
	defer admin.Close()
	// On a Citus coordinator (bash .ci/citus.sh -- go run ./bench/api ...),
	// the database is made on every node and distributed as migrate does.
	citus, err := tenancy.CitusVersion(ctx, admin)
	if err != nil {
		return nil, err
	}
	var workers []citusdb.Node
	if citus != "" {
		if workers, err = citusdb.Workers(ctx, serverURL); err != nil {
			return nil, err
		}
		citusdb.Drop(ctx, serverURL, name, workers)
		if err := citusdb.Create(ctx, serverURL, name, workers); err != nil {
			return nil, fmt.Errorf("create bench database on citus: %w", err)
		}
	} else {
		if _, err := admin.ExecContext(ctx, `DROP DATABASE IF EXISTS `+tenancy.QuoteIdent(name)+` WITH (FORCE)`); err != nil {
			return nil, fmt.Errorf("drop bench database: %w", err)
		}
		if _, err := admin.ExecContext(ctx, `CREATE DATABASE `+tenancy.QuoteIdent(name)); err != nil {
			return nil, fmt.Errorf("create bench database: %w", err)
		}
	}
	d := &DB{OwnerURL: URL(serverURL, name, ""), AppURL: URL(serverURL, name, appRole)}
	if d.Owner, err = sql.Open("pgx", d.OwnerURL); err != nil {
		return nil, err
	}
	if _, err := tenancy.EnsureAppRole(ctx, d.Owner, appRole, ""); err != nil {
		d.Close()
		return nil, err
	}
	d.Migrator = &tenancy.Migrator{OwnerDSN: d.OwnerURL, AppRole: appRole, Control: migrations.Control(), Tenant: migrations.Tenant()}
	if _, err := d.Migrator.UpControl(ctx); err != nil {
		d.Close()
		return nil, err
	}
	if _, err := d.Migrator.UpSchema(ctx, "public"); err != nil {
		d.Close()
		return nil, err
	}
	if _, err := d.Migrator.SyncCitus(ctx, d.Owner); err != nil {
		d.Close()
		return nil, err
	}
	d.Lifecycle = &tenancy.Lifecycle{Registry: &tenancy.PGStore{DB: d.Owner}, Placement: tenancy.Placement{Strategy: tenancy.Hybrid},
		Provisioner: &tenancy.Provisioner{Migrator: d.Migrator, Owner: d.Owner}}
	return d, nil
}

// Close closes the owner pool.
func (d *DB) Close() { d.Owner.Close() }

// Tenant provisions a tenant and gives it rows projects, one minute apart.
func (d *DB) Tenant(ctx context.Context, identifier string, tier tenancy.Tier, rows int) (*tenancy.Tenant, error) {
	t, err := d.Lifecycle.Create(ctx, tenancy.NewTenant{Identifier: identifier, Name: identifier, Tier: tier})
	if err != nil {
		return nil, err
	}
	_, err = d.Owner.ExecContext(ctx, `INSERT INTO `+tenancy.QuoteIdent(t.Schema())+`.projects (id, tenant_id, name, description, created_at, updated_at)
		SELECT gen_random_uuid(), $1, 'project ' || i, 'a benchmark project', now() - i * interval '1 minute', now()
		FROM generate_series(1, $2) i`, t.ID, rows)
	if err != nil {
		return nil, fmt.Errorf("seed %s: %w", identifier, err)
	}
	return t, nil
}

// URL returns base pointing at database name, as user when user is not "".
func URL(base, name, user string) string {
	u, err := url.Parse(base)
	if err != nil {
		return base
	}
	u.Path = "/" + name
	if user != "" {
		u.User = url.User(user)
	}
	return u.String()
}

// EnvOr returns the environment variable k, or def when it is unset.
func EnvOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
