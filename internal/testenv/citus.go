package testenv

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"os"
	"testing"

	"github.com/your-org/tenantkit/internal/citusdb"
	"github.com/your-org/tenantkit/internal/tenancy"
)

// With TEST_CITUS set (make test-citus), TEST_DATABASE_URL names a Citus
// coordinator whose workers are registered in that database. A test
// database can then not be cloned from a template (its shards live on the
// workers): each is created on every node, with the citus extension, the
// workers registered and citus.enable_schema_based_sharding on
// (internal/citusdb), and migrated as `migrate up` does (control plane,
// public, SyncCitus). Premium tenants the test creates become distributed
// schemas at provisioning.
func citusMode() bool { return os.Getenv("TEST_CITUS") != "" }

// CitusMode reports whether the suite runs against a Citus cluster.
func CitusMode() bool { return citusMode() }

// citusPostgres is PostgresWith on a Citus cluster.
func citusPostgres(t testing.TB, base string, control, tenant fs.FS) *DB {
	t.Helper()
	ctx := context.Background()
	workers, err := citusdb.Workers(ctx, base)
	if err != nil {
		t.Fatalf("TEST_CITUS is set: %v", err)
	}
	name := "tk_test_" + randomHex(6)
	t.Cleanup(func() {
		if os.Getenv("TESTENV_KEEP") == "" {
			citusdb.Drop(context.Background(), base, name, workers)
		}
	})
	owner := withDatabase(base, name, "")
	d := &DB{Name: name, OwnerURL: owner, AppURL: withDatabase(base, name, AppRole)}
	d.DirectAppURL = d.AppURL
	if d.Owner, err = sql.Open("pgx", d.OwnerURL); err != nil {
		t.Fatal(err)
	}
	m := &tenancy.Migrator{OwnerDSN: owner, AppRole: AppRole, Control: control, Tenant: tenant}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	// One at a time: registering workers and distributing tables sync
	// cluster-wide objects (roles) to the workers, which concurrent runs
	// trip over ("tuple concurrently updated").
	err = withLock(admin, func(*sql.Conn) error {
		if err := citusdb.Create(ctx, base, name, workers); err != nil {
			return err
		}
		if _, err := m.UpControl(ctx); err != nil {
			return fmt.Errorf("migrate control plane: %w", err)
		}
		if _, err := m.UpSchema(ctx, "public"); err != nil {
			return fmt.Errorf("migrate public: %w", err)
		}
		_, err := m.SyncCitus(ctx, d.Owner)
		return err
	})
	admin.Close()
	if err != nil {
		t.Fatalf("citus: %v", err)
	}
	if d.App, err = tenancy.OpenDB(d.AppURL, tenancy.PoolConfig{MaxIdle: 8, MaxOverflow: 8}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.App.Close(); d.Owner.Close() })
	return d
}
