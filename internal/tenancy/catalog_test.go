package tenancy_test

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/testenv"
)

// unguardedTables checks invariant 4 over the catalog: every table of schema
// with a tenant_id column has row-level security enabled and forced, a
// policy bound to app.current_tenant, and no permissive policy that is not
// (permissive policies are OR-ed: one USING (true) opens the table). It
// returns the tables checked and one problem per failing table.
func unguardedTables(ctx context.Context, db *sql.DB, schema string) (checked, problems []string, err error) {
	rows, err := db.QueryContext(ctx, `SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
			count(p.polname) FILTER (WHERE p.polcmd = '*' AND p.polpermissive
				AND pg_get_expr(p.polqual, p.polrelid) LIKE '%tenant_id%app.current_tenant%'
				AND coalesce(pg_get_expr(p.polwithcheck, p.polrelid), pg_get_expr(p.polqual, p.polrelid)) LIKE '%tenant_id%app.current_tenant%'),
			coalesce(string_agg(p.polname, ', ') FILTER (WHERE p.polpermissive AND (
				pg_get_expr(p.polqual, p.polrelid) NOT LIKE '%tenant_id%app.current_tenant%' OR
				pg_get_expr(p.polwithcheck, p.polrelid) NOT LIKE '%tenant_id%app.current_tenant%')), '')
		FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
		LEFT JOIN pg_policy p ON p.polrelid = c.oid
		WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')
		GROUP BY c.relname, c.relrowsecurity, c.relforcerowsecurity
		ORDER BY c.relname`, schema)
	if err != nil {
		return nil, nil, fmt.Errorf("read catalog of %s: %w", schema, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			table           string
			enabled, forced bool
			tenantPolicies  int
			openPolicies    string
		)
		if err := rows.Scan(&table, &enabled, &forced, &tenantPolicies, &openPolicies); err != nil {
			return nil, nil, err
		}
		checked = append(checked, table)
		var why []string
		if !enabled {
			why = append(why, "row level security not enabled")
		}
		if !forced {
			why = append(why, "row level security not forced")
		}
		if tenantPolicies == 0 {
			why = append(why, "no policy on tenant_id = app.current_tenant for all commands")
		}
		if openPolicies != "" {
			why = append(why, "permissive policies not bound to app.current_tenant: "+openPolicies)
		}
		if len(why) > 0 {
			problems = append(problems, schema+"."+table+": "+strings.Join(why, ", "))
		}
	}
	return checked, problems, rows.Err()
}

// Invariant 4 over the real migrations: a forker's new tenant table without
// RLS and a policy fails this test.
func TestCatalog_EveryTenantTableIsGuardedByRLS(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	ctx := context.Background()
	prem := d.Tenant(t, "catalog-prem", tenancy.TierPremium)
	for _, schema := range []string{"public", prem.Schema()} {
		checked, problems, err := unguardedTables(ctx, d.Owner, schema)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			t.Errorf("invariant 4 broken: %s", p)
		}
		for _, want := range []string{"projects", "reports"} {
			if i := sort.SearchStrings(checked, want); i == len(checked) || checked[i] != want {
				t.Errorf("%s: checker did not see %s (checked %v)", schema, want, checked)
			}
		}
	}
}

// The checker is not vacuous: each way of leaving a tenant table open is reported.
func TestCatalog_CheckerReportsUnguardedTables(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	ctx := context.Background()
	const policy = `USING (tenant_id = nullif(current_setting('app.current_tenant', true), '')::uuid)
		WITH CHECK (tenant_id = nullif(current_setting('app.current_tenant', true), '')::uuid)`
	_, err := d.Owner.ExecContext(ctx, `
		CREATE TABLE public.widgets (id int, tenant_id uuid NOT NULL);
		CREATE TABLE public.gadgets (id int, tenant_id uuid NOT NULL);
		ALTER TABLE public.gadgets ENABLE ROW LEVEL SECURITY;
		CREATE POLICY tenant_isolation ON public.gadgets `+policy+`;
		CREATE TABLE public.gizmos (id int, tenant_id uuid NOT NULL);
		ALTER TABLE public.gizmos ENABLE ROW LEVEL SECURITY;
		ALTER TABLE public.gizmos FORCE ROW LEVEL SECURITY;
		CREATE TABLE public.doohickeys (id int, tenant_id uuid NOT NULL);
		ALTER TABLE public.doohickeys ENABLE ROW LEVEL SECURITY;
		ALTER TABLE public.doohickeys FORCE ROW LEVEL SECURITY;
		CREATE POLICY tenant_isolation ON public.doohickeys `+policy+`;
		CREATE POLICY everyone ON public.doohickeys FOR SELECT USING (true);
		CREATE TABLE public.readonly_guard (id int, tenant_id uuid NOT NULL);
		ALTER TABLE public.readonly_guard ENABLE ROW LEVEL SECURITY;
		ALTER TABLE public.readonly_guard FORCE ROW LEVEL SECURITY;
		CREATE POLICY only_select ON public.readonly_guard FOR SELECT `+strings.Split(policy, "WITH CHECK")[0]+`;
		CREATE TABLE public.events (id int, tenant_id uuid NOT NULL, at date) PARTITION BY RANGE (at);
		CREATE TABLE public.no_tenant (id int);
		CREATE TABLE public.guarded (id int, tenant_id uuid NOT NULL);
		ALTER TABLE public.guarded ENABLE ROW LEVEL SECURITY;
		ALTER TABLE public.guarded FORCE ROW LEVEL SECURITY;
		CREATE POLICY tenant_isolation ON public.guarded `+policy+`;`)
	if err != nil {
		t.Fatal(err)
	}
	_, problems, err := unguardedTables(ctx, d.Owner, "public")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"widgets":        "not enabled",
		"gadgets":        "not forced",
		"gizmos":         "no policy",
		"doohickeys":     "everyone",
		"readonly_guard": "no policy",
		"events":         "not enabled",
	}
	for _, p := range problems {
		table := strings.TrimPrefix(p[:strings.Index(p, ":")], "public.")
		w, ok := want[table]
		if !ok {
			t.Errorf("reported a guarded table: %s", p)
			continue
		}
		if !strings.Contains(p, w) {
			t.Errorf("report %q lacks %q", p, w)
		}
		delete(want, table)
	}
	for table := range want {
		t.Errorf("unguarded table %s was not reported", table)
	}
}
