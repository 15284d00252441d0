package tenancy_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/testenv"
)

// A fork's migration creates a tenant table and forgets the five lines of
// row level security: `migrate up` guards it in the migration's transaction,
// in public and in every premium schema, and no tenant sees another's row.
func TestMigrate_GuardsATenantTableItsMigrationLeftOpen(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	ctx := context.Background()
	acme, globex := d.Tenant(t, "acme", tenancy.TierStandard), d.Tenant(t, "globex", tenancy.TierStandard)
	prem := d.Tenant(t, "initech", tenancy.TierPremium)
	rep, err := fleetFor(d, tenantMigrations(t, testenv.Migration{Name: "add_invoice_notes", SQL: `-- +goose Up
CREATE TABLE kit_notes (id serial, tenant_id uuid NOT NULL, body text NOT NULL, PRIMARY KEY (tenant_id, id));
-- +goose Down
DROP TABLE kit_notes;
`})).Up(ctx, false)
	if err != nil || !rep.OK() {
		t.Fatalf("up: %v %+v", err, rep)
	}
	for _, schema := range []string{"public", prem.Schema()} {
		var enabled, forced bool
		var policies int
		if err := d.Owner.QueryRow(`SELECT relrowsecurity, relforcerowsecurity, (SELECT count(*) FROM pg_policy WHERE polrelid = c.oid)
			FROM pg_class c WHERE c.oid = $1::regclass`, schema+".kit_notes").Scan(&enabled, &forced, &policies); err != nil {
			t.Fatal(err)
		}
		if !enabled || !forced || policies != 1 {
			t.Errorf("%s.kit_notes: rls %v, forced %v, %d policies; want guarded", schema, enabled, forced, policies)
		}
	}
	for _, tn := range []*tenancy.Tenant{acme, prem} {
		if _, err := d.App.ExecContext(tenancy.WithTenant(ctx, tn), `INSERT INTO kit_notes (tenant_id, body) VALUES ($1, 'secret')`, tn.ID); err != nil {
			t.Fatalf("%s writes its own note: %v", tn.Identifier, err)
		}
	}
	var n int
	if err := d.App.QueryRowContext(tenancy.WithTenant(ctx, globex), `SELECT count(*) FROM kit_notes`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("globex sees %d of acme's notes (%v)", n, err)
	}
	if _, err := d.App.ExecContext(tenancy.WithTenant(ctx, globex), `INSERT INTO kit_notes (tenant_id, body) VALUES ($1, 'forged')`, acme.ID); err == nil {
		t.Fatal("globex wrote a note as acme")
	}
}

// What the guard cannot make safe, `migrate up` refuses: the migration rolls
// back, and the error names the migration file, the relation and the SQL to add.
func TestMigrate_RefusesRelationsThatBypassRLS(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, sql, relation string
		want                []string
	}{
		{"superuser_view", `CREATE VIEW project_counts AS SELECT tenant_id, count(*) AS n FROM projects GROUP BY 1;`,
			"project_counts", []string{"security_invoker", "ALTER VIEW", "SET (security_invoker = true)"}},
		{"materialized_view", `CREATE MATERIALIZED VIEW project_totals AS SELECT tenant_id, count(*) AS n FROM projects GROUP BY 1;`,
			"project_totals", []string{"materialized view", "DROP MATERIALIZED VIEW"}},
		{"security_definer", "-- +goose StatementBegin\nCREATE FUNCTION count_all_projects() RETURNS bigint LANGUAGE sql SECURITY DEFINER AS $$ SELECT count(*) FROM projects $$;\n-- +goose StatementEnd",
			"count_all_projects()", []string{"SECURITY DEFINER", "ALTER FUNCTION", "SECURITY INVOKER", "tenantkit:definer count_all_projects"}},
		{"undeclared_reference_table", `CREATE TABLE kit_currencies (code text PRIMARY KEY);`,
			"kit_currencies", []string{"no tenant_id", "-- tenantkit:shared kit_currencies"}},
		{"widened_policy", `CREATE TABLE kit_widened (id int, tenant_id uuid NOT NULL);
ALTER TABLE kit_widened ENABLE ROW LEVEL SECURITY;
ALTER TABLE kit_widened FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON kit_widened
    USING (current_setting('app.current_tenant', true) IS NULL OR tenant_id = nullif(current_setting('app.current_tenant', true), '')::uuid);`,
			"kit_widened", []string{"other than the isolation policy", "DROP POLICY \"tenant_isolation\"", "CREATE POLICY tenant_isolation"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			d := testenv.Postgres(t)
			prem := d.Tenant(t, "refused", tenancy.TierPremium)
			m := d.Migrator()
			var versions []int64
			m.Tenant, versions = testenv.TenantMigrations(t, testenv.Migration{Name: c.name, SQL: "-- +goose Up\n" + c.sql + "\n-- +goose Down\nSELECT 1;\n"})
			file := fmt.Sprintf("%05d_%s.sql", versions[0], c.name)
			for _, schema := range []string{"public", prem.Schema()} {
				_, err := m.UpSchema(context.Background(), schema)
				if err == nil {
					t.Fatalf("%s: migration with %s applied", schema, c.name)
				}
				ie := isolationError(t, err)
				msg := err.Error()
				for _, w := range append([]string{file, c.relation}, c.want...) {
					if !strings.Contains(msg, w) {
						t.Errorf("%s: refusal lacks %q:\n%s", schema, w, msg)
					}
				}
				if len(ie.Problems) != 1 {
					t.Errorf("%s: %d problems, want 1: %v", schema, len(ie.Problems), ie.Problems)
				}
				if got := bookkept(t, d, schema); got >= versions[0] {
					t.Errorf("%s: bookkept at %d: the refused migration committed", schema, got)
				}
				var exists bool
				name := strings.TrimSuffix(c.relation, "()")
				if err := d.Owner.QueryRow(`SELECT to_regclass($1) IS NOT NULL OR EXISTS (SELECT 1 FROM pg_proc WHERE proname = $2)`,
					schema+"."+name, name).Scan(&exists); err != nil || exists {
					t.Errorf("%s: %s survived the refusal (%v)", schema, c.relation, err)
				}
			}
		})
	}
}

// Reference data shared by every tenant is declared: read-only to the app
// role, or writable when the declaration says so.
func TestMigrate_SharedTablesAreReadOnlyUnlessDeclaredWritable(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	ctx := context.Background()
	tn := d.Tenant(t, "shared-reader", tenancy.TierStandard)
	rep, err := fleetFor(d, tenantMigrations(t, testenv.Migration{Name: "reference", SQL: `-- +goose Up
-- tenantkit:shared kit_currencies
-- tenantkit:shared kit_feature_flags writable
CREATE TABLE kit_currencies (code text PRIMARY KEY);
INSERT INTO kit_currencies VALUES ('EUR'), ('USD');
CREATE TABLE kit_feature_flags (name text PRIMARY KEY);
-- +goose Down
DROP TABLE kit_currencies, kit_feature_flags;
`})).Up(ctx, false)
	if err != nil || !rep.OK() {
		t.Fatalf("up: %v %+v", err, rep)
	}
	bound := tenancy.WithTenant(ctx, tn)
	var n int
	if err := d.App.QueryRowContext(bound, `SELECT count(*) FROM kit_currencies`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("app role reads %d kit_currencies (%v), want 2", n, err)
	}
	if _, err := d.App.ExecContext(bound, `INSERT INTO kit_currencies VALUES ('GBP')`); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("app role wrote a read-only shared table: %v", err)
	}
	if _, err := d.App.ExecContext(bound, `INSERT INTO kit_feature_flags VALUES ('beta')`); err != nil {
		t.Fatalf("app role cannot write a table declared shared writable: %v", err)
	}

	// A grant made behind migrate's back (by hand, by another tool) is what
	// the start-up check exists for: api and worker refuse to run on it.
	if _, err := d.Owner.Exec(`GRANT INSERT ON kit_currencies TO ` + testenv.AppRole); err != nil {
		t.Fatal(err)
	}
	problems, err := tenancy.IsolationCheck{DSN: d.AppURL, Declarations: declarations(t,
		"-- tenantkit:shared kit_currencies\n-- tenantkit:shared kit_feature_flags writable\n")}.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var named []string
	for _, p := range problems {
		named = append(named, p.Relation)
	}
	if len(problems) != 1 || problems[0].Relation != "public.kit_currencies" || !strings.Contains(problems[0].Why, "read-only") {
		t.Fatalf("start-up check on a read-only shared table the app role may write: problems on %v, want exactly public.kit_currencies (%+v)", named, problems)
	}
}
