package tenancy_test

import (
	"context"
	"testing"

	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/testenv"
)

// A database or schema tenant whose migrations fail, on the default cell or
// on another server, leaves nothing behind: no database, no schema, no
// registry row on either cell.
func TestCells_FailedProvisioningLeavesNothingOnAnyCell(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	d2 := testenv.SecondCluster(t).Postgres(t)
	d.AddCell("cell2", d2)
	broken, _ := testenv.TenantMigrations(t, testenv.Migration{Name: "broken", SQL: "-- +goose Up\nSELECT no_such_function();\n-- +goose Down\nSELECT 1;\n"})
	life := d.Lifecycle()
	life.Provisioner.Migrator.Tenant = broken
	life.Provisioner.Cells["cell2"].Migrator.Tenant = broken
	ctx := context.Background()
	for _, c := range []struct {
		cell string
		on   *testenv.DB
		iso  tenancy.Isolation
	}{{"default", d, tenancy.IsolationDatabase}, {"cell2", d2, tenancy.IsolationDatabase}, {"cell2", d2, tenancy.IsolationSchema}} {
		id := "broken-" + string(c.iso) + "-" + c.cell
		if _, err := life.Create(ctx, tenancy.NewTenant{Identifier: id, Name: id, Tier: tenancy.TierPremium, Isolation: c.iso, Cell: c.cell}); err == nil {
			t.Fatalf("%s: provisioning with a broken migration succeeded", id)
		}
		var dbs, schemas, here, control int
		if err := c.on.Owner.QueryRow(`SELECT (SELECT count(*) FROM pg_database WHERE datname = $1),
			(SELECT count(*) FROM pg_namespace WHERE nspname = $2),
			(SELECT count(*) FROM tenancy.tenants WHERE identifier = $3)`,
			tenancy.DatabaseName(c.on.Name, id), tenancy.SchemaName(id), id).Scan(&dbs, &schemas, &here); err != nil {
			t.Fatal(err)
		}
		if err := d.Owner.QueryRow(`SELECT count(*) FROM tenancy.tenants WHERE identifier = $1`, id).Scan(&control); err != nil {
			t.Fatal(err)
		}
		if dbs+schemas+here+control != 0 {
			t.Errorf("%s (%s on %s) left %d databases, %d schemas, %d rows in its cell's registry, %d in the control plane",
				id, c.iso, c.cell, dbs, schemas, here, control)
		}
	}
}
