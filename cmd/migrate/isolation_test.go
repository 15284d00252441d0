package main

import (
	"strings"
	"testing"

	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/testenv"
)

// Relations created outside a migration (by hand, by a tool) are found too:
// `status --check` exits 1 naming every one with its fix, and `up` fails the
// target that holds each, even with no migration to apply.
func TestStatusCheckAndUp_NameEveryUnguardedRelation(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	prem := premiumTenants(t, d, "unguarded", 1)[0]
	if _, err := d.Owner.Exec(`CREATE VIEW public.project_counts AS SELECT tenant_id, count(*) AS n FROM public.projects GROUP BY 1;
		CREATE TABLE ` + tenancy.QuoteIdent(prem.Schema()) + `.kit_notes (id int, tenant_id uuid NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	want := []string{"public.project_counts", "security_invoker = true", prem.Schema() + ".kit_notes", "ENABLE ROW LEVEL SECURITY"}

	st := migrate(t, d.OwnerURL, d.AppURL, nil, "status", "--check")
	if st.code != 1 || !strings.Contains(st.stdout, "UNGUARDED") {
		t.Fatalf("status --check: exit %d, want 1 and UNGUARDED:\n%s", st.code, st.stdout)
	}
	for _, w := range want {
		if !strings.Contains(st.stdout, w) {
			t.Errorf("status --check does not say %q:\n%s", w, st.stdout)
		}
	}
	if js := migrate(t, d.OwnerURL, d.AppURL, nil, "status", "--json").status(t); len(js.Unguarded) != 2 {
		t.Errorf("status --json: unguarded %+v, want the view and the table", js.Unguarded)
	}

	up := migrate(t, d.OwnerURL, d.AppURL, nil, "up", "--json")
	rep := up.report(t)
	if up.code != 1 || rep.OK {
		t.Fatalf("up over unguarded relations: exit %d ok %v, want 1", up.code, rep.OK)
	}
	if x := rep.target(t, "public"); x.Status != "failed" || !strings.Contains(x.Error, "project_counts") {
		t.Errorf("public: %+v, want failed naming project_counts", x)
	}
	if x := rep.target(t, prem.Schema()); x.Status != "failed" || !strings.Contains(x.Error, "kit_notes") {
		t.Errorf("%s: %+v, want failed naming kit_notes", prem.Schema(), x)
	}

	if _, err := d.Owner.Exec(`ALTER VIEW public.project_counts SET (security_invoker = true);
		DROP TABLE ` + tenancy.QuoteIdent(prem.Schema()) + `.kit_notes`); err != nil {
		t.Fatal(err)
	}
	if st := migrate(t, d.OwnerURL, d.AppURL, nil, "status", "--check"); st.code != 0 {
		t.Fatalf("status --check after the fixes: exit %d\n%s", st.code, st.stdout)
	}
}
