package tenancy_test

import (
	"context"
	"testing"

	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/testenv"
)

func TestIsolation_RawQueryWithoutTenantSeesNoRows(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	ctx := context.Background()
	std := d.Tenant(t, "globex", tenancy.TierStandard)
	if _, err := d.App.ExecContext(tenancy.WithTenant(ctx, std), `INSERT INTO projects (id, tenant_id, name) VALUES (gen_random_uuid(), $1, 'p')`, std.ID); err != nil {
		t.Fatalf("insert as tenant: %v", err)
	}
	var n int
	if err := d.App.QueryRowContext(ctx, `SELECT count(*) FROM public.projects`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("unbound app role saw %d rows of public.projects, want 0", n)
	}
	if err := d.App.QueryRowContext(tenancy.WithTenant(ctx, std), `SELECT count(*) FROM projects`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("bound tenant saw %d rows, want 1", n)
	}
}
