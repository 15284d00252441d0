package tenancy_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5"

	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/testenv"
	"github.com/your-org/tenantkit/migrations"
)

const isolationPolicy = `USING (tenant_id = nullif(current_setting('app.current_tenant', true), '')::uuid)
	WITH CHECK (tenant_id = nullif(current_setting('app.current_tenant', true), '')::uuid)`

func declarations(t *testing.T, directives string) tenancy.Declarations {
	t.Helper()
	d, err := tenancy.ParseDeclarations(fstest.MapFS{"00001_x.sql": {Data: []byte("-- +goose Up\n" + directives)}})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// tenantTables lists, from the catalog, every table of schema with a
// tenant_id column: the tests cover a fork's tables as well as the kit's.
func tenantTables(t *testing.T, db *sql.DB, schema string) []string {
	t.Helper()
	rows, err := db.Query(`SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
		WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') ORDER BY 1`, schema)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// Invariants 4 and 12 over the real migrations: the same check api, worker
// and `migrate` run finds nothing in public or a premium schema, and it saw
// every tenant table the catalog has.
func TestCatalog_EveryTenantRelationIsGuarded(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	prem := d.Tenant(t, "catalog-prem", tenancy.TierPremium)
	decl, err := tenancy.ParseDeclarations(migrations.Tenant())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []tenancy.IsolationCheck{
		{DSN: d.OwnerURL, AppRole: testenv.AppRole, Declarations: decl}, // as migrate runs it
		{DSN: d.AppURL, Declarations: decl},                             // as api and worker run it
	} {
		problems, err := c.Run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			t.Errorf("invariant 12 broken: %s", p)
		}
	}
	for _, schema := range []string{"public", prem.Schema()} {
		if len(tenantTables(t, d.Owner, schema)) == 0 {
			t.Errorf("%s has no tenant table: the check above proved nothing", schema)
		}
	}
}

// Every tenant table, discovered from the catalog, seen through a brand-new
// app-role connection that never bound a tenant (app.current_tenant is NULL,
// not ”), holds no visible row although every tenant has rows in it.
func TestCatalog_NeverBoundConnectionSeesNoRowOfAnyTenantTable(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	ctx := context.Background()
	a, b := d.Tenant(t, "never-a", tenancy.TierStandard), d.Tenant(t, "never-b", tenancy.TierStandard)
	seedTenantData(t, d, a, 2)
	seedTenantData(t, d, b, 1)
	// Direct: behind a transaction pooler no connection is brand-new.
	conn, err := pgx.Connect(ctx, d.DirectAppURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var unset bool
	if err := conn.QueryRow(ctx, `SELECT current_setting('app.current_tenant', true) IS NULL`).Scan(&unset); err != nil || !unset {
		t.Fatalf("a fresh connection has app.current_tenant set (%v): the premise is gone", err)
	}
	for _, table := range tenantTables(t, d.Owner, "public") {
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM public.`+tenancy.QuoteIdent(table)).Scan(&n); err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		if n != 0 {
			t.Errorf("public.%s: a never-bound connection sees %d rows", table, n)
		}
	}
}

// The structural check is not vacuous: each way of leaving a relation open is
// reported, named, and comes with its fix; guarded and declared ones are not.
func TestCatalog_CheckReportsEveryWayToBypassRLS(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	ctx := context.Background()
	_, err := d.Owner.ExecContext(ctx, `
		CREATE TABLE public.widgets (id int, tenant_id uuid NOT NULL);
		CREATE TABLE public.gadgets (id int, tenant_id uuid NOT NULL);
		ALTER TABLE public.gadgets ENABLE ROW LEVEL SECURITY;
		CREATE POLICY tenant_isolation ON public.gadgets `+isolationPolicy+`;
		CREATE TABLE public.gizmos (id int, tenant_id uuid NOT NULL);
		ALTER TABLE public.gizmos ENABLE ROW LEVEL SECURITY;
		ALTER TABLE public.gizmos FORCE ROW LEVEL SECURITY;
		CREATE TABLE public.doohickeys (id int, tenant_id uuid NOT NULL);
		ALTER TABLE public.doohickeys ENABLE ROW LEVEL SECURITY;
		ALTER TABLE public.doohickeys FORCE ROW LEVEL SECURITY;
		CREATE POLICY tenant_isolation ON public.doohickeys `+isolationPolicy+`;
		CREATE POLICY everyone ON public.doohickeys FOR SELECT USING (true);
		CREATE TABLE public.no_check (id int, tenant_id uuid NOT NULL);
		ALTER TABLE public.no_check ENABLE ROW LEVEL SECURITY;
		ALTER TABLE public.no_check FORCE ROW LEVEL SECURITY;
		CREATE POLICY tenant_isolation ON public.no_check USING (tenant_id = nullif(current_setting('app.current_tenant', true), '')::uuid);
		CREATE TABLE public.widened (id int, tenant_id uuid NOT NULL);
		ALTER TABLE public.widened ENABLE ROW LEVEL SECURITY;
		ALTER TABLE public.widened FORCE ROW LEVEL SECURITY;
		CREATE POLICY tenant_isolation ON public.widened
			USING (current_setting('app.current_tenant', true) IS NULL OR tenant_id = nullif(current_setting('app.current_tenant', true), '')::uuid);
		CREATE TABLE public.events (id int, tenant_id uuid NOT NULL, at date) PARTITION BY RANGE (at);
		CREATE TABLE public.no_tenant (id int);
		CREATE TABLE public.currencies (code text);
		CREATE TABLE public.rates (code text);
		GRANT INSERT ON public.rates TO `+testenv.AppRole+`;
		CREATE TABLE public.flags (name text);
		GRANT INSERT ON public.flags TO `+testenv.AppRole+`;
		CREATE VIEW public.project_counts AS SELECT tenant_id, count(*) FROM public.projects GROUP BY 1;
		CREATE VIEW public.my_projects WITH (security_invoker = true) AS SELECT * FROM public.projects;
		CREATE MATERIALIZED VIEW public.project_totals AS SELECT tenant_id, count(*) FROM public.projects GROUP BY 1;
		CREATE FUNCTION public.all_projects() RETURNS bigint LANGUAGE sql SECURITY DEFINER AS 'SELECT count(*) FROM public.projects';
		CREATE FUNCTION public.reviewed_definer() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1';
		CREATE FUNCTION public.invoker_fn() RETURNS bigint LANGUAGE sql AS 'SELECT count(*) FROM public.projects';
		CREATE TABLE public.guarded (id int, tenant_id uuid NOT NULL);
		ALTER TABLE public.guarded ENABLE ROW LEVEL SECURITY;
		ALTER TABLE public.guarded FORCE ROW LEVEL SECURITY;
		CREATE POLICY tenant_isolation ON public.guarded `+isolationPolicy+`;
		CREATE POLICY only_eu ON public.guarded AS RESTRICTIVE USING (id > 0);`)
	if err != nil {
		t.Fatal(err)
	}
	decl := declarations(t, "-- tenantkit:shared currencies\n-- tenantkit:shared rates\n-- tenantkit:shared flags writable\n-- tenantkit:definer reviewed_definer\n"+
		"CREATE TABLE widgets (id int, tenant_id uuid NOT NULL);\n") // the file that created it is named
	problems, err := tenancy.CheckSchemas(ctx, d.Owner, []string{"public"}, testenv.AppRole, decl)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"public.widgets":        {"created by migration 00001_x.sql", "not enabled", "not forced", "no isolation policy", "ENABLE ROW LEVEL SECURITY", "FORCE ROW LEVEL SECURITY", "CREATE POLICY tenant_isolation"},
		"public.gadgets":        {"not forced", "FORCE ROW LEVEL SECURITY"},
		"public.gizmos":         {"no isolation policy", "CREATE POLICY"},
		"public.doohickeys":     {"everyone", `DROP POLICY "everyone"`},
		"public.no_check":       {"tenant_isolation", "CREATE POLICY tenant_isolation"},
		"public.widened":        {"tenant_isolation", "DROP POLICY"},
		"public.events":         {"not enabled"},
		"public.no_tenant":      {"no tenant_id", "tenantkit:shared no_tenant"},
		"public.rates":          {"read-only", "REVOKE INSERT"},
		"public.project_counts": {"security_invoker", `ALTER VIEW "public"."project_counts" SET (security_invoker = true)`},
		"public.project_totals": {"materialized view", "DROP MATERIALIZED VIEW"},
		"all_projects()":        {"SECURITY DEFINER", "SECURITY INVOKER", "tenantkit:definer all_projects"},
	}
	for _, p := range problems {
		w, ok := want[p.Relation]
		if !ok {
			t.Errorf("reported a guarded or declared relation: %s", p)
			continue
		}
		for _, s := range w {
			if !strings.Contains(p.String(), s) {
				t.Errorf("report %q lacks %q", p, s)
			}
		}
		delete(want, p.Relation)
	}
	for rel := range want {
		t.Errorf("%s was not reported", rel)
	}
}

// The probe tests what policies allow, not their text: each policy below
// lets rows through (or lets the owner through) and is caught by behaviour
// alone, on a fresh connection where app.current_tenant is NULL.
func TestProbe_CatchesPoliciesThatLetRowsThrough(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, setup, want string
	}{
		{"null_widened", `CREATE POLICY tenant_isolation ON public.t
			USING (current_setting('app.current_tenant', true) IS NULL OR tenant_id = nullif(current_setting('app.current_tenant', true), '')::uuid)
			WITH CHECK (tenant_id = nullif(current_setting('app.current_tenant', true), '')::uuid)`, "never-bound connection (app.current_tenant NULL), it sees 2"},
		{"or_true", `CREATE POLICY tenant_isolation ON public.t
			USING (tenant_id = nullif(current_setting('app.current_tenant', true), '')::uuid OR true)
			WITH CHECK (tenant_id = nullif(current_setting('app.current_tenant', true), '')::uuid OR true)`, "bound to tenant A, it may insert a row of tenant B"},
		{"not_forced", `ALTER TABLE public.t NO FORCE ROW LEVEL SECURITY;
			CREATE POLICY tenant_isolation ON public.t ` + isolationPolicy, "bound to tenant A, it sees 1 row(s) of tenant B"},
		{"select_everyone", `CREATE POLICY tenant_isolation ON public.t ` + isolationPolicy + `;
			CREATE POLICY peek ON public.t FOR SELECT USING (true)`, "(app.current_tenant ''), it sees 2"},
		{"delete_everyone", `CREATE POLICY tenant_isolation ON public.t ` + isolationPolicy + `;
			CREATE POLICY purge ON public.t FOR DELETE USING (true)`, "it may delete tenant B's row"},
		{"move_rows", `CREATE POLICY tenant_isolation ON public.t
			USING (tenant_id = nullif(current_setting('app.current_tenant', true), '')::uuid) WITH CHECK (true)`, "bound to tenant A, it may insert a row of tenant B"},
		{"update_everyone", `CREATE POLICY tenant_isolation ON public.t ` + isolationPolicy + `;
			CREATE POLICY rewrite ON public.t FOR UPDATE USING (true) WITH CHECK (true)`, "it may update tenant B's row"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			d := testenv.Postgres(t)
			ctx := context.Background()
			if _, err := d.Owner.ExecContext(ctx, `CREATE TABLE public.t (id int, tenant_id uuid NOT NULL);
				ALTER TABLE public.t ENABLE ROW LEVEL SECURITY; ALTER TABLE public.t FORCE ROW LEVEL SECURITY;
				GRANT SELECT, INSERT, UPDATE, DELETE ON public.t TO `+testenv.AppRole+`;`+c.setup); err != nil {
				t.Fatal(err)
			}
			// As the owner acting as the app role: the app role itself has no
			// TEMPORARY for the copies (migrate up revokes it).
			for _, as := range []struct{ dsn, role string }{{d.OwnerURL, testenv.AppRole}} {
				problems := probeFresh(t, as.dsn, as.role)
				if !strings.Contains(strings.Join(problemStrings(problems), "\n"), "public.t: ") ||
					!strings.Contains(strings.Join(problemStrings(problems), "\n"), c.want) {
					t.Errorf("probe as %q: %v, want a problem on public.t saying %q", as.role, problems, c.want)
				}
			}
		})
	}
}

// The probe finds nothing wrong with the isolation policy (plus a
// restrictive one, which only narrows), and leaves nothing behind.
func TestProbe_PassesTheIsolationPolicy(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	if _, err := d.Owner.Exec(`CREATE TABLE public.t (id int, tenant_id uuid NOT NULL);
		ALTER TABLE public.t ENABLE ROW LEVEL SECURITY; ALTER TABLE public.t FORCE ROW LEVEL SECURITY;
		CREATE POLICY tenant_isolation ON public.t ` + isolationPolicy + `;
		CREATE POLICY narrow ON public.t AS RESTRICTIVE USING (true);
		GRANT SELECT, INSERT, UPDATE, DELETE ON public.t TO ` + testenv.AppRole); err != nil {
		t.Fatal(err)
	}
	// As the owner acting as the app role: the app role itself has no
	// TEMPORARY for the copies (migrate up revokes it).
	for _, as := range []struct{ dsn, role string }{{d.OwnerURL, testenv.AppRole}} {
		if problems := probeFresh(t, as.dsn, as.role); len(problems) != 0 {
			t.Errorf("probe as %q: %v", as.role, problems)
		}
	}
	var rows int
	if err := d.Owner.QueryRow(`SELECT count(*) FROM public.t`).Scan(&rows); err != nil || rows != 0 {
		t.Errorf("the probe left %d rows (%v)", rows, err)
	}
}

// probeFresh runs the probe of public on a new connection, in a transaction
// it rolls back.
func probeFresh(t *testing.T, dsn, appRole string) []tenancy.Problem {
	t.Helper()
	ctx := context.Background()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck
	problems, err := tenancy.ProbeIsolation(ctx, tx, "public", appRole)
	if err != nil {
		t.Fatal(err)
	}
	return problems
}

func problemStrings(ps []tenancy.Problem) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

// isolationError unwraps the refusal of a migration.
func isolationError(t *testing.T, err error) *tenancy.IsolationError {
	t.Helper()
	var ie *tenancy.IsolationError
	if !errors.As(err, &ie) {
		t.Fatalf("error %v is not an isolation refusal", err)
	}
	return ie
}
