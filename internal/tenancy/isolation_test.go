package tenancy_test

import (
	"context"
	"testing"

	"github.com/google/uuid"

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

// Schema-qualified names do not cross tenants either: every tenant table, in
// public and in each premium schema, is RLS-guarded on app.current_tenant.
func TestIsolation_QualifiedNamesCannotReachAnotherTenant(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	ctx := context.Background()
	tenants := []*tenancy.Tenant{
		d.Tenant(t, "qual-p1", tenancy.TierPremium), d.Tenant(t, "qual-p2", tenancy.TierPremium),
		d.Tenant(t, "qual-s1", tenancy.TierStandard), d.Tenant(t, "qual-s2", tenancy.TierStandard),
	}
	for _, tn := range tenants {
		if _, err := d.App.ExecContext(tenancy.WithTenant(ctx, tn), `INSERT INTO projects (tenant_id, name) VALUES ($1, 'mine')`, tn.ID); err != nil {
			t.Fatal(err)
		}
	}
	for _, reader := range append([]*tenancy.Tenant{nil}, tenants...) {
		rctx, who := ctx, "unbound"
		if reader != nil {
			rctx, who = tenancy.WithTenant(ctx, reader), reader.Identifier
		}
		for _, owner := range tenants {
			q := `SELECT count(*) FROM ` + tenancy.QuoteIdent(owner.Schema()) + `.projects WHERE tenant_id = $1`
			var n int
			if err := d.App.QueryRowContext(rctx, q, owner.ID).Scan(&n); err != nil {
				t.Fatalf("%s reading %s: %v", who, owner.Identifier, err)
			}
			want := 0
			if reader == owner {
				want = 1
			}
			if n != want {
				t.Errorf("%s sees %d rows of %s in %s, want %d", who, n, owner.Identifier, owner.Schema(), want)
			}
			if reader != nil && reader != owner {
				res, err := d.App.ExecContext(rctx, `UPDATE `+tenancy.QuoteIdent(owner.Schema())+`.projects SET name = 'stolen' WHERE tenant_id = $1`, owner.ID)
				if err != nil {
					t.Fatal(err)
				}
				if n, _ := res.RowsAffected(); n != 0 {
					t.Errorf("%s updated %d rows of %s", who, n, owner.Identifier)
				}
			}
		}
	}
}

// Hybrid placement end to end: the stored placement decides where a tenant's
// statements run, and PREMIUM_TENANT_IDS places a standard tenant in its own schema.
func TestIsolation_HybridTenantsRunWhereTheyArePlaced(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	ctx := context.Background()
	forcedID := uuid.New()
	lc := d.Lifecycle()
	lc.Placement = tenancy.Placement{Strategy: tenancy.Hybrid, PremiumIDs: map[uuid.UUID]bool{forcedID: true}}
	cases := []struct {
		in   tenancy.NewTenant
		want tenancy.Isolation
	}{
		{tenancy.NewTenant{Identifier: "hy-premium", Name: "p", Tier: tenancy.TierPremium}, tenancy.IsolationSchema},
		{tenancy.NewTenant{Identifier: "hy-standard", Name: "s", Tier: tenancy.TierStandard}, tenancy.IsolationRLS},
		{tenancy.NewTenant{ID: forcedID, Identifier: "hy-forced", Name: "f", Tier: tenancy.TierStandard}, tenancy.IsolationSchema},
	}
	for _, c := range cases {
		tn, err := lc.Create(ctx, c.in)
		if err != nil {
			t.Fatal(err)
		}
		if tn.Isolation != c.want || tn.Tier != c.in.Tier {
			t.Errorf("%s: placed %s (tier %s), want %s", c.in.Identifier, tn.Isolation, tn.Tier, c.want)
		}
		wantSchema := "public"
		if c.want == tenancy.IsolationSchema {
			wantSchema = tenancy.SchemaName(c.in.Identifier)
		}
		var schema string
		if err := d.App.QueryRowContext(tenancy.WithTenant(ctx, tn), `SELECT current_schema()`).Scan(&schema); err != nil {
			t.Fatal(err)
		}
		if schema != wantSchema {
			t.Errorf("%s: statements run in %q, want %q", c.in.Identifier, schema, wantSchema)
		}
		stored, err := (&tenancy.PGStore{DB: d.App}).TenantByID(ctx, tn.ID)
		if err != nil || stored.Isolation != c.want {
			t.Errorf("%s: stored placement %v (%v), want %s", c.in.Identifier, stored, err, c.want)
		}
	}
}
