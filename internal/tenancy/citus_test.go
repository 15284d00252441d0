//go:build citus

// Citus layout tests: built only by `make test-citus` (-tags citus), which
// runs them against a coordinator and two workers (TEST_CITUS=1); they fail,
// never skip, anywhere else.
package tenancy_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/uuid"

	"github.com/your-org/tenantkit/internal/apperr"
	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/testenv"
)

func citusDB(t *testing.T) *testenv.DB {
	t.Helper()
	if !testenv.CitusMode() {
		t.Fatal("the Citus tests need a Citus cluster: run them with `make test-citus`")
	}
	return testenv.Postgres(t)
}

// With schema-based sharding on before the first migrate up: the control
// plane stays local on the coordinator, public's tenant tables are
// distributed by tenant_id in one co-location group, and premium schemas are
// distributed schemas spread over both workers.
func TestCitus_LayoutAfterMigrateUpAndProvisioning(t *testing.T) {
	t.Parallel()
	d := citusDB(t)
	var sharding string
	if err := d.Owner.QueryRow(`SHOW citus.enable_schema_based_sharding`).Scan(&sharding); err != nil || sharding != "on" {
		t.Fatalf("schema-based sharding is %q (%v), want on", sharding, err)
	}
	var schemas []string
	for i := range 4 {
		schemas = append(schemas, d.Tenant(t, fmt.Sprintf("citus-prem-%d", i), tenancy.TierPremium).Schema())
	}
	d.Tenant(t, "citus-std", tenancy.TierStandard)

	var controlDistributed int
	if err := d.Owner.QueryRow(`SELECT (SELECT count(*) FROM pg_dist_schema WHERE schemaid = 'tenancy'::regnamespace)
		+ (SELECT count(*) FROM pg_dist_partition p JOIN pg_class c ON c.oid = p.logicalrelid
		   WHERE c.relnamespace = 'tenancy'::regnamespace)`).Scan(&controlDistributed); err != nil {
		t.Fatal(err)
	}
	if controlDistributed != 0 {
		t.Errorf("the control plane is distributed (%d schema/tables): it must stay local on the coordinator", controlDistributed)
	}

	tables := tenantTables(t, d.Owner, "public")
	rows, err := d.Owner.Query(`SELECT c.relname, p.partmethod::text, p.colocationid
		FROM pg_dist_partition p JOIN pg_class c ON c.oid = p.logicalrelid
		WHERE c.relnamespace = 'public'::regnamespace AND p.partmethod = 'h'`)
	if err != nil {
		t.Fatal(err)
	}
	dist := map[string]string{}
	groups := map[int]bool{}
	for rows.Next() {
		var name, method string
		var group int
		if err := rows.Scan(&name, &method, &group); err != nil {
			t.Fatal(err)
		}
		dist[name] = method
		groups[group] = true
	}
	rows.Close()
	for _, tbl := range tables {
		if dist[tbl] != "h" {
			t.Errorf("public.%s is not hash-distributed (%q)", tbl, dist[tbl])
		}
		var col string
		if err := d.Owner.QueryRow(`SELECT column_to_column_name(logicalrelid, partkey) FROM pg_dist_partition WHERE logicalrelid = $1::regclass`,
			"public."+tbl).Scan(&col); err != nil || col != "tenant_id" {
			t.Errorf("public.%s is distributed by %q (%v), want tenant_id", tbl, col, err)
		}
	}
	if len(groups) != 1 {
		t.Errorf("public's tenant tables sit in %d co-location groups, want 1", len(groups))
	}

	nodes := map[int]bool{}
	for _, s := range schemas {
		var distributed bool
		if err := d.Owner.QueryRow(`SELECT EXISTS (SELECT 1 FROM pg_dist_schema WHERE schemaid = $1::regnamespace)`, s).Scan(&distributed); err != nil || !distributed {
			t.Errorf("premium schema %s is not a distributed schema (%v)", s, err)
		}
		var port int
		if err := d.Owner.QueryRow(`SELECT DISTINCT nodeport FROM citus_shards WHERE table_name = ($1 || '.projects')::regclass`, s).Scan(&port); err != nil {
			t.Errorf("placement of %s: %v", s, err)
		}
		nodes[port] = true
	}
	if len(nodes) < 2 {
		t.Errorf("premium schemas all on %d node(s), want them spread over both workers", len(nodes))
	}
	// What `migrate status` prints: every tenant on a node.
	placed, err := tenancy.TenantPlacement(context.Background(), d.Owner)
	if err != nil || len(placed) != len(schemas)+1 {
		t.Fatalf("placement: %v (%v), want %d tenants", placed, err, len(schemas)+1)
	}
	for _, p := range placed {
		if p.Node == "" {
			t.Errorf("tenant %s has no node", p.Identifier)
		}
	}
}

// SyncCitus is idempotent: a second run changes nothing.
func TestCitus_SyncIsIdempotent(t *testing.T) {
	t.Parallel()
	d := citusDB(t)
	d.Tenant(t, "citus-idem", tenancy.TierPremium)
	m := d.Migrator()
	for i := range 2 {
		changed, err := m.SyncCitus(context.Background(), d.Owner)
		if err != nil || len(changed) != 0 {
			t.Errorf("run %d: changed %v (%v), want nothing", i+1, changed, err)
		}
	}
}

// Reference data declared shared becomes a reference table; a tenant table a
// later migration adds is distributed, co-located, by the next migrate up.
func TestCitus_SharedTablesBecomeReferenceTables(t *testing.T) {
	t.Parallel()
	d := citusDB(t)
	m := d.Migrator()
	m.Tenant, _ = testenv.TenantMigrations(t, testenv.Migration{Name: "citus_ref", SQL: `-- +goose Up
-- tenantkit:shared kit_currencies
CREATE TABLE kit_currencies (code text PRIMARY KEY);
CREATE TABLE kit_invoices (id uuid NOT NULL DEFAULT gen_random_uuid(), tenant_id uuid NOT NULL,
    currency text NOT NULL REFERENCES kit_currencies (code), PRIMARY KEY (tenant_id, id));
ALTER TABLE kit_invoices ADD CONSTRAINT kit_invoices_tenant_fk FOREIGN KEY (tenant_id) REFERENCES tenancy.tenants (id) ON DELETE CASCADE NOT VALID;
-- +goose Down
DROP TABLE kit_invoices; DROP TABLE kit_currencies;
`})
	ctx := context.Background()
	if _, err := m.UpSchema(ctx, "public"); err != nil {
		t.Fatal(err)
	}
	changed, err := m.SyncCitus(ctx, d.Owner)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"public.kit_currencies: reference table": true, "public.kit_invoices: distributed by tenant_id": true}
	for _, c := range changed {
		delete(want, c)
	}
	if len(want) > 0 {
		t.Errorf("SyncCitus changed %v; missing %v", changed, want)
	}
	var method string
	if err := d.Owner.QueryRow(`SELECT partmethod::text FROM pg_dist_partition WHERE logicalrelid = 'public.kit_currencies'::regclass`).Scan(&method); err != nil || method != "n" {
		t.Errorf("kit_currencies: partmethod %q (%v), want a reference table", method, err)
	}
	var colocated bool
	if err := d.Owner.QueryRow(`SELECT (SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = 'public.kit_invoices'::regclass)
		= (SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = 'public.projects'::regclass)`).Scan(&colocated); err != nil || !colocated {
		t.Errorf("kit_invoices is not co-located with projects (%v)", err)
	}
}

// The binding reaches the shards: a premium and a standard tenant write and
// read through the app role's pool (RLS runs on the workers), and neither
// sees the other's rows.
func TestCitus_BindingReachesTheShards(t *testing.T) {
	t.Parallel()
	d := citusDB(t)
	ctx := context.Background()
	prem, std := d.Tenant(t, "citus-bind-p", tenancy.TierPremium), d.Tenant(t, "citus-bind-s", tenancy.TierStandard)
	for _, tn := range []*tenancy.Tenant{prem, std} {
		tctx := tenancy.WithTenant(ctx, tn)
		for range 3 {
			if _, err := d.App.ExecContext(tctx, `INSERT INTO projects (tenant_id, name) VALUES ($1, 'p')`, tn.ID); err != nil {
				t.Fatalf("%s insert: %v", tn.Identifier, err)
			}
		}
	}
	for _, tn := range []*tenancy.Tenant{prem, std} {
		var n int
		if err := d.App.QueryRowContext(tenancy.WithTenant(ctx, tn), `SELECT count(*) FROM projects`).Scan(&n); err != nil || n != 3 {
			t.Errorf("%s sees %d projects (%v), want 3", tn.Identifier, n, err)
		}
		// Another tenant's id in the row is refused by the policy on the shard.
		if _, err := d.App.ExecContext(tenancy.WithTenant(ctx, tn), `INSERT INTO projects (tenant_id, name) VALUES ($1, 'x')`, uuid.New()); err == nil {
			t.Errorf("%s wrote a row of another tenant", tn.Identifier)
		}
	}
	var n int
	if err := d.App.QueryRowContext(ctx, `SELECT count(*) FROM public.projects`).Scan(&n); err != nil || n != 0 {
		t.Errorf("unbound: %d rows (%v), want 0", n, err)
	}
	// Nothing stays on the pooled connections, coordinator or workers.
	var leaked string
	if err := d.App.QueryRowContext(ctx, `SELECT coalesce(current_setting('app.current_tenant', true), '')`).Scan(&leaked); err != nil || leaked != "" {
		t.Errorf("a pooled connection carries app.current_tenant=%q (%v)", leaked, err)
	}
}

// A Citus cell spreads one database over its nodes: a tenant database of its
// own is refused, before anything is created, naming the isolation.
func TestCitus_DatabaseIsolationIsRefused(t *testing.T) {
	t.Parallel()
	d := citusDB(t)
	_, err := d.Lifecycle().Create(context.Background(), tenancy.NewTenant{Identifier: "citus-own-db", Name: "own db",
		Tier: tenancy.TierPremium, Isolation: tenancy.IsolationDatabase, Cell: tenancy.DefaultCell})
	e, ok := apperr.As(err)
	if !ok || e.Code != apperr.ValidationFailed || len(e.Fields) != 1 || e.Fields[0].Field != "isolation" {
		t.Fatalf("database tenant on a Citus cell: %v, want validation_failed on isolation", err)
	}
	var n int
	if err := d.Owner.QueryRow(`SELECT count(*) FROM pg_database WHERE datname LIKE '%citus_own_db%'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d databases left behind (%v)", n, err)
	}
	if err := d.Owner.QueryRow(`SELECT count(*) FROM tenancy.tenants WHERE identifier = 'citus-own-db'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("the refused tenant is in the registry (%d, %v)", n, err)
	}
}
