package tenancy_test

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"testing"
	"testing/fstest"

	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/testenv"
	"github.com/your-org/tenantkit/migrations"
)

func bookkept(t *testing.T, d *testenv.DB, schema string) int64 {
	t.Helper()
	var v int64
	err := d.Owner.QueryRow(`SELECT version FROM tenancy.schema_versions WHERE schema_name = $1`, schema).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return -1
	}
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// Provisioning goes through Migrator.UpSchema, the path `migrate up` uses:
// the new schema is in the bookkeeping at the latest version.
func TestProvision_SharesUpSchemaAndRecordsVersion(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	tn := d.Tenant(t, "booked", tenancy.TierPremium)
	latest, err := d.Migrator().LatestTenantVersion()
	if err != nil {
		t.Fatal(err)
	}
	if got := bookkept(t, d, tn.Schema()); got != latest {
		t.Fatalf("bookkept version of a provisioned tenant: %d, want %d", got, latest)
	}
	if got := bookkept(t, d, "public"); got != latest {
		t.Fatalf("bookkept version of public: %d, want %d", got, latest)
	}
}

// The bookkeeping row is written in the migration's transaction: a failing
// migration leaves it, with the schema, at the last version that committed.
func TestUpSchema_FailedMigrationLeavesBookkeepingAtCommittedVersion(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	tn := d.Tenant(t, "halfway", tenancy.TierPremium)
	m := d.Migrator()
	var versions []int64
	m.Tenant, versions = testenv.TenantMigrations(t,
		testenv.Migration{Name: "ok", SQL: "-- +goose Up\n-- tenantkit:shared ok_one\nCREATE TABLE ok_one (x int);\n-- +goose Down\nDROP TABLE ok_one;\n"},
		testenv.Migration{Name: "fail", SQL: "-- +goose Up\n-- tenantkit:shared ok_two\nCREATE TABLE ok_two (x int);\nSELECT 1/0;\n-- +goose Down\nDROP TABLE ok_two;\n"})
	ok, before := versions[0], versions[0]-1
	applied, err := m.UpSchema(context.Background(), tn.Schema())
	if err == nil {
		t.Fatal("a migration dividing by zero succeeded")
	}
	if len(applied) != 1 || applied[0].Source.Version != ok {
		t.Fatalf("applied %v, want only %d", applied, ok)
	}
	if got := bookkept(t, d, tn.Schema()); got != ok {
		t.Fatalf("bookkept %d after %d failed, want %d", got, versions[1], ok)
	}
	var two bool
	_ = d.Owner.QueryRow(`SELECT to_regclass($1) IS NOT NULL`, tn.Schema()+".ok_two").Scan(&two)
	if two {
		t.Fatal("the failed migration's table survived its rollback")
	}
	if _, err := m.DownSchemaTo(context.Background(), tn.Schema(), before); err != nil {
		t.Fatal(err)
	}
	if got := bookkept(t, d, tn.Schema()); got != before {
		t.Fatalf("bookkept %d after down to %d, want %d", got, before, before)
	}
}

// A control set without the bookkeeping table (older databases, tests with
// their own control set) still provisions and migrates.
func TestUpSchema_WorksWithoutBookkeepingTable(t *testing.T) {
	t.Parallel()
	first, err := fs.ReadFile(migrations.Control(), "00001_tenancy.sql")
	if err != nil {
		t.Fatal(err)
	}
	control := fstest.MapFS{"00001_tenancy.sql": {Data: first}}
	d := testenv.PostgresWith(t, control, migrations.Tenant())
	m := d.Migrator()
	m.Control = control
	if _, err := m.UpSchema(context.Background(), "tenant_legacy"); err != nil {
		t.Fatalf("UpSchema without tenancy.schema_versions: %v", err)
	}
	latest, err := m.LatestTenantVersion()
	if err != nil {
		t.Fatal(err)
	}
	var v int64
	if err := d.Owner.QueryRow(`SELECT max(version_id) FROM tenant_legacy.goose_db_version`).Scan(&v); err != nil || v != latest {
		t.Fatalf("tenant_legacy at %d (%v), want %d", v, err, latest)
	}
}

func TestMigrator_RefusesSchemaNamesGooseCannotQuote(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	m := d.Migrator()
	for _, bad := range []string{`Tenant_X`, `x"; DROP SCHEMA public; --`, `a.b`} {
		if _, err := m.UpSchema(context.Background(), bad); err == nil {
			t.Errorf("UpSchema(%q) succeeded", bad)
		}
		var exists bool
		_ = d.Owner.QueryRow(`SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, bad).Scan(&exists)
		if exists {
			t.Errorf("UpSchema(%q) created the schema", bad)
		}
	}
}
