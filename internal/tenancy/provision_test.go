package tenancy_test

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"net/url"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/uuid"

	"github.com/your-org/tenantkit/internal/apperr"
	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/testenv"
	"github.com/your-org/tenantkit/migrations"
)

func schemaExists(t *testing.T, d *testenv.DB, schema string) bool {
	t.Helper()
	var ok bool
	if err := d.Owner.QueryRow(`SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, schema).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

func schemaCount(t *testing.T, d *testenv.DB) int {
	t.Helper()
	var n int
	// pg_temp_N and pg_toast_temp_N belong to backends, not to tenants.
	if err := d.Owner.QueryRow(`SELECT count(*) FROM pg_namespace WHERE nspname !~ '^pg_(toast_)?temp_'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// registryRowsMentioning counts rows of the tenant registry (tenants, api
// keys) whose text contains one of needles.
func registryRowsMentioning(t *testing.T, d *testenv.DB, needles ...string) int {
	t.Helper()
	total := 0
	for _, tbl := range []string{"tenancy.tenants", "tenancy.api_keys"} {
		for _, n := range needles {
			var c int
			if err := d.Owner.QueryRow(`SELECT count(*) FROM `+tbl+` r WHERE strpos(r::text, $1) > 0`, n).Scan(&c); err != nil {
				t.Fatal(err)
			}
			total += c
		}
	}
	return total
}

func brokenTenantFS(t *testing.T, failFirst bool) fs.FS {
	t.Helper()
	good, err := fs.ReadFile(migrations.Tenant(), "00001_projects.sql")
	if err != nil {
		t.Fatal(err)
	}
	broken := []byte("-- +goose Up\nCREATE TABLE reports (id uuid PRIMARY KEY, tenant_id uuid NOT NULL, kind no_such_type);\n-- +goose Down\nDROP TABLE reports;\n")
	if failFirst {
		return fstest.MapFS{"00001_projects.sql": {Data: broken}}
	}
	return fstest.MapFS{"00001_projects.sql": {Data: good}, "00002_reports.sql": {Data: broken}}
}

func TestProvision_FailedMigrationLeavesNothingBehind(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	ctx := context.Background()
	for _, c := range []struct {
		name      string
		failFirst bool
	}{{"second migration fails", false}, {"first migration fails", true}} {
		m := d.Migrator()
		m.Tenant = brokenTenantFS(t, c.failFirst)
		lc := d.Lifecycle()
		lc.Provisioner = &tenancy.Provisioner{Migrator: m, Owner: d.Owner}
		const ident = "half-way"
		schemasBefore := schemaCount(t, d)
		tn, err := lc.Create(ctx, tenancy.NewTenant{Identifier: ident, Name: "Half Way", Tier: tenancy.TierPremium})
		if err == nil {
			t.Fatalf("%s: provisioning succeeded: %+v", c.name, tn)
		}
		if e, ok := apperr.As(err); ok && e.Code != apperr.Internal {
			t.Errorf("%s: error %v has code %s, want internal", c.name, err, e.Code)
		}
		if schemaExists(t, d, "tenant_half_way") || schemaCount(t, d) != schemasBefore {
			t.Errorf("%s: a schema was left behind", c.name)
		}
		if n := registryRowsMentioning(t, d, ident); n != 0 {
			t.Errorf("%s: %d registry rows left behind", c.name, n)
		}
	}
	// Nothing stands in the way of provisioning it properly afterwards.
	tn := d.Tenant(t, "half-way", tenancy.TierPremium)
	var n int
	if err := d.App.QueryRowContext(tenancy.WithTenant(ctx, tn), `SELECT count(*) FROM reports`).Scan(&n); err != nil {
		t.Fatalf("reports after a clean provisioning: %v", err)
	}
}

// A schema that already exists was not made by us: refuse, never adopt or drop it.
func TestProvision_ExistingSchemaIsNeitherAdoptedNorDropped(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	ctx := context.Background()
	if _, err := d.Owner.Exec(`CREATE SCHEMA tenant_squatter; CREATE TABLE tenant_squatter.keep (id int); INSERT INTO tenant_squatter.keep VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	_, err := d.Lifecycle().Create(ctx, tenancy.NewTenant{Identifier: "squatter", Name: "S", Tier: tenancy.TierPremium})
	if e, ok := apperr.As(err); !ok || e.Code != apperr.Conflict {
		t.Fatalf("create over an existing schema: %v, want conflict", err)
	}
	var n int
	if err := d.Owner.QueryRow(`SELECT count(*) FROM tenant_squatter.keep`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("the existing schema was touched: %d %v", n, err)
	}
	if _, err := (&tenancy.PGStore{DB: d.App}).TenantByIdentifier(ctx, "squatter"); err == nil {
		t.Error("the registry row was left behind")
	}
}

// Invariant 5: schema names come only from validated identifiers and are quoted.
func TestSchemaName_OnlyFromValidatedIdentifiersAndQuoted(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"acme": "tenant_acme", "acme-corp": "tenant_acme_corp", "a1-b2-c3": "tenant_a1_b2_c3"} {
		if !tenancy.ValidIdentifier(in) {
			t.Errorf("%q refused", in)
		}
		if got := tenancy.SchemaName(in); got != want {
			t.Errorf("SchemaName(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{`tenant_acme`: `"tenant_acme"`, `a"b`: `"a""b"`, `x"; DROP SCHEMA public; --`: `"x""; DROP SCHEMA public; --"`, ``: `""`} {
		if got := tenancy.QuoteIdent(in); got != want {
			t.Errorf("QuoteIdent(%q) = %s, want %s", in, got, want)
		}
	}
	for _, bad := range hostileSchemaIdentifiers() {
		if tenancy.ValidIdentifier(bad) {
			t.Errorf("hostile identifier %q accepted", bad)
		}
	}
}

func hostileSchemaIdentifiers() []string {
	return []string{"", "ab", "a", "Acme", "acme-", "-acme", "1acme", "acme_corp", "acme corp", "acme.corp",
		`x"; drop schema public cascade; --`, "acme\n", "acme\x00", "ацме", "acme;", "a" + strings.Repeat("b", 32),
		"../acme", "acme$1", "TENANCY"}
}

func TestProvision_RefusesInvalidIdentifiers(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	ctx := context.Background()
	p := &tenancy.Provisioner{Migrator: d.Migrator(), Owner: d.Owner}
	before := schemaCount(t, d)
	for _, bad := range hostileSchemaIdentifiers() {
		tn := &tenancy.Tenant{ID: uuid.New(), Identifier: bad, Tier: tenancy.TierPremium, Isolation: tenancy.IsolationSchema}
		if err := p.Provision(ctx, tn); err == nil {
			t.Errorf("Provision(%q) succeeded", bad)
		}
		if err := p.Destroy(ctx, tn); err == nil {
			t.Errorf("Destroy(%q) succeeded", bad)
		}
		_, err := d.Lifecycle().Create(ctx, tenancy.NewTenant{Identifier: bad, Name: "x", Tier: tenancy.TierPremium})
		if e, ok := apperr.As(err); !ok || e.Code != apperr.ValidationFailed {
			t.Errorf("Create(%q): %v, want validation_failed", bad, err)
		}
	}
	if got := schemaCount(t, d); got != before {
		t.Errorf("schemas went from %d to %d", before, got)
	}
}

// tenantData counts rows per tenant in every table with a tenant_id, in
// public and every tenant schema, as the (superuser) owner.
func tenantData(t *testing.T, d *testenv.DB) map[string]int {
	t.Helper()
	rows, err := d.Owner.Query(`SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
		WHERE c.relkind IN ('r', 'p') AND (n.nspname = 'public' OR n.nspname LIKE 'tenant\_%')`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var s string
		_ = rows.Scan(&s)
		tables = append(tables, s)
	}
	rows.Close()
	out := map[string]int{}
	for _, tbl := range tables {
		r, err := d.Owner.Query(`SELECT tenant_id, count(*) FROM ` + tbl + ` GROUP BY tenant_id`)
		if err != nil {
			t.Fatal(err)
		}
		for r.Next() {
			var id uuid.UUID
			var n int
			_ = r.Scan(&id, &n)
			out[tbl+"/"+id.String()] = n
		}
		r.Close()
	}
	return out
}

func seedTenantData(t *testing.T, d *testenv.DB, tn *tenancy.Tenant, projects int) {
	t.Helper()
	ctx := tenancy.WithTenant(context.Background(), tn)
	for i := 0; i < projects; i++ {
		if _, err := d.App.ExecContext(ctx, `INSERT INTO projects (tenant_id, name) VALUES ($1, $2)`, tn.ID, fmt.Sprint(tn.Identifier, i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.App.ExecContext(ctx, `INSERT INTO reports (tenant_id, kind) VALUES ($1, 'project_summary')`, tn.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := (&tenancy.PGStore{DB: d.App}).CreateAPIKey(ctx, tn.ID, "key"); err != nil {
		t.Fatal(err)
	}
}

func TestDestroy_RemovesExactlyTheTenantsData(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	ctx := context.Background()
	var all []*tenancy.Tenant
	for i, tier := range []tenancy.Tier{tenancy.TierPremium, tenancy.TierPremium, tenancy.TierStandard, tenancy.TierStandard} {
		tn := d.Tenant(t, fmt.Sprintf("gone-%d", i), tier)
		seedTenantData(t, d, tn, i+2)
		all = append(all, tn)
	}
	for _, victim := range []*tenancy.Tenant{all[0], all[2]} {
		before := tenantData(t, d)
		if err := d.Lifecycle().Delete(ctx, victim.ID); err != nil {
			t.Fatalf("delete %s: %v", victim.Identifier, err)
		}
		after := tenantData(t, d)
		for k, n := range before {
			mine := strings.HasSuffix(k, "/"+victim.ID.String())
			switch {
			case mine && after[k] != 0:
				t.Errorf("%s: %s still holds %d rows", victim.Identifier, k, after[k])
			case !mine && after[k] != n:
				t.Errorf("deleting %s changed %s from %d to %d rows", victim.Identifier, k, n, after[k])
			}
		}
		for k := range after {
			if _, ok := before[k]; !ok {
				t.Errorf("deleting %s created rows %s", victim.Identifier, k)
			}
		}
		if victim.Isolation == tenancy.IsolationSchema && schemaExists(t, d, victim.Schema()) {
			t.Errorf("schema %s not dropped", victim.Schema())
		}
		if n := registryRowsMentioning(t, d, victim.ID.String()); n != 0 {
			t.Errorf("%s: %d registry rows remain", victim.Identifier, n)
		}
	}
	for _, tn := range []*tenancy.Tenant{all[1], all[3]} {
		if tn.Isolation == tenancy.IsolationSchema && !schemaExists(t, d, tn.Schema()) {
			t.Errorf("schema %s of a surviving tenant is gone", tn.Schema())
		}
	}
}

// Under FORCE ROW LEVEL SECURITY even the owner only sees bound rows: with an
// owner that is not a superuser, Destroy must bind the tenant to find them.
func TestDestroy_StandardTenantUnderForcedRLSWithNonSuperuserOwner(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	ctx := context.Background()
	victim := d.Tenant(t, "rls-victim", tenancy.TierStandard)
	bystander := d.Tenant(t, "rls-bystander", tenancy.TierStandard)
	seedTenantData(t, d, victim, 3)
	seedTenantData(t, d, bystander, 2)

	owner := throwawayRole(t, d, "LOGIN NOSUPERUSER NOBYPASSRLS")
	// Every tenant table of public, as the catalog lists them (a fork adds its own).
	if _, err := d.Owner.Exec(`DO $$ DECLARE r record; BEGIN
		FOR r IN SELECT c.relname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id'
		          WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') LOOP
			EXECUTE format('ALTER TABLE public.%I OWNER TO %I', r.relname, '` + owner + `');
		END LOOP; END $$`); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(d.OwnerURL)
	u.User = url.User(owner)
	ownerDB, err := sql.Open("pgx", u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ownerDB.Close() })
	var visible int
	if err := ownerDB.QueryRow(`SELECT count(*) FROM public.projects`).Scan(&visible); err != nil || visible != 0 {
		t.Fatalf("unbound owner sees %d rows (%v): the premise of this test is gone", visible, err)
	}
	before := tenantData(t, d)
	p := &tenancy.Provisioner{Migrator: d.Migrator(), Owner: ownerDB}
	if err := p.Destroy(ctx, victim); err != nil {
		t.Fatal(err)
	}
	after := tenantData(t, d)
	for _, tbl := range []string{"public.projects", "public.reports"} {
		if n := after[tbl+"/"+victim.ID.String()]; n != 0 {
			t.Errorf("%s still holds %d rows of the destroyed tenant", tbl, n)
		}
		k := tbl + "/" + bystander.ID.String()
		if after[k] != before[k] || before[k] == 0 {
			t.Errorf("%s: bystander went from %d to %d rows", tbl, before[k], after[k])
		}
	}
}
