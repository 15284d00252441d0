package main

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/testenv"
)

var widgets = testenv.Migration{Name: "widgets", SQL: `-- +goose Up
CREATE TABLE widgets (
    id        uuid NOT NULL DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL,
    name      text NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
ALTER TABLE widgets ENABLE ROW LEVEL SECURITY;
ALTER TABLE widgets FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON widgets
    USING (tenant_id = nullif(current_setting('app.current_tenant', true), '')::uuid)
    WITH CHECK (tenant_id = nullif(current_setting('app.current_tenant', true), '')::uuid);

-- +goose Down
DROP TABLE widgets;
`}

var gadgets = testenv.Migration{Name: "gadgets", SQL: `-- +goose Up
-- tenantkit:shared gadgets
CREATE TABLE gadgets (id int PRIMARY KEY);

-- +goose Down
DROP TABLE gadgets;
`}

func TestUp_FreshDatabaseReachesLatestAndSecondRunDoesNothing(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	ctx := context.Background()
	owner, app := freshDatabase(t, d)

	first := migrate(t, owner, app, nil, "up", "--json")
	if first.code != 0 {
		t.Fatalf("first up: exit %d\n%s%s", first.code, first.stdout, first.stderr)
	}
	rep := first.report(t)
	if !rep.OK || rep.target(t, "tenancy").Status != "migrated" || rep.target(t, "public").Status != "migrated" {
		t.Fatalf("first up on a fresh database did not migrate control and public: %+v", rep)
	}

	// Premium tenants provisioned on the new database are targets too.
	m := &tenancy.Migrator{OwnerDSN: owner, AppRole: testenv.AppRole, Control: d.Migrator().Control, Tenant: d.Migrator().Tenant}
	ownerDB, err := sql.Open("pgx", owner)
	if err != nil {
		t.Fatal(err)
	}
	defer ownerDB.Close()
	life := &tenancy.Lifecycle{Registry: &tenancy.PGStore{DB: ownerDB}, Placement: tenancy.Placement{Strategy: tenancy.Hybrid},
		Provisioner: &tenancy.Provisioner{Migrator: m, Owner: ownerDB}}
	for _, id := range []string{"fresh-one", "fresh-two"} {
		if _, err := life.Create(ctx, tenancy.NewTenant{Identifier: id, Name: id, Tier: tenancy.TierPremium}); err != nil {
			t.Fatal(err)
		}
	}

	st := migrate(t, owner, app, nil, "status", "--json", "--check")
	if st.code != 0 || st.status(t).Drift || len(st.status(t).Targets) != 4 {
		t.Fatalf("status after up: exit %d, want every target (control, public, 2 premium) current:\n%s", st.code, st.stdout)
	}
	for _, x := range st.status(t).Targets {
		if x.State != "current" || i64(x.Current) != x.Latest {
			t.Errorf("%s: current %d latest %d state %s, want at latest", x.Schema, i64(x.Current), x.Latest, x.State)
		}
	}

	second := migrate(t, owner, app, nil, "up")
	if second.code != 0 || !strings.Contains(second.stdout, "nothing to do") {
		t.Fatalf("second up: exit %d, want it to say there was nothing to do:\n%s", second.code, second.stdout)
	}
	rep = migrate(t, owner, app, nil, "up", "--json").report(t)
	if !rep.NothingToDo || rep.Counts["migrated"] != 0 || rep.Counts["current"] != 4 {
		t.Fatalf("third up: %+v, want nothing to do over 4 targets", rep.Counts)
	}
}

// freshDatabase names a database that does not exist yet (up creates it) and
// drops it after the test.
func freshDatabase(t *testing.T, d *testenv.DB) (owner, app string) {
	t.Helper()
	name := d.Name + "_fresh"
	rewrite := func(s string) string {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		u.Path = "/" + name
		return u.String()
	}
	t.Cleanup(func() { _, _ = d.Owner.Exec(`DROP DATABASE IF EXISTS ` + name + ` WITH (FORCE)`) })
	return rewrite(d.OwnerURL), rewrite(d.AppURL)
}

func TestUp_FailureInOneTenantDoesNotStopTheOthers(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	tenants := premiumTenants(t, d, "fleet", 50)
	broken := tenants[17]
	// A conflicting object in exactly one schema makes the new migration fail there.
	if _, err := d.Owner.Exec(`CREATE TABLE ` + tenancy.QuoteIdent(broken.Schema()) + `.widgets (x int)`); err != nil {
		t.Fatal(err)
	}
	next, versions := withTenantMigrations(t, widgets)

	run := migrate(t, d.OwnerURL, d.AppURL, next, "up", "--json", "--concurrency", "4")
	if run.code != 1 {
		t.Fatalf("up with one failing tenant: exit %d, want 1\n%s", run.code, run.stderr)
	}
	rep := run.report(t)
	if rep.OK || rep.Counts["failed"] != 1 || rep.Counts["migrated"] != 50 { // public + 49
		t.Fatalf("counts %v, want 1 failed and 50 migrated (public and 49 premium)", rep.Counts)
	}
	failed := rep.target(t, broken.Schema())
	if failed.Status != "failed" || failed.TenantID != broken.ID.String() || !strings.Contains(failed.Error, "already exists") {
		t.Fatalf("failed target %+v, want %s named with its error", failed, broken.Schema())
	}
	for _, tn := range tenants {
		if tn.ID != broken.ID && rep.target(t, tn.Schema()).Status != "migrated" {
			t.Errorf("%s: %s, want migrated", tn.Schema(), rep.target(t, tn.Schema()).Status)
		}
	}
	var n int
	if err := d.Owner.QueryRow(`SELECT count(*) FROM pg_tables WHERE tablename = 'widgets' AND schemaname LIKE 'tenant_fleet_%'`).Scan(&n); err != nil || n != 50 {
		t.Fatalf("widgets tables in premium schemas: %d (%v), want 50 (49 migrated + the conflicting one)", n, err)
	}

	// The human summary names the failed tenant, and status flags the drift.
	human := migrate(t, d.OwnerURL, d.AppURL, next, "up")
	if human.code != 1 || !strings.Contains(human.stdout, "FAILED    "+broken.Schema()) || !strings.Contains(human.stdout, broken.ID.String()) {
		t.Fatalf("human summary (exit %d) does not name the failed tenant:\n%s", human.code, human.stdout)
	}
	st := migrate(t, d.OwnerURL, d.AppURL, next, "status", "--check")
	if st.code != 1 || !strings.Contains(st.stdout, "DRIFT") || !strings.Contains(st.stdout, broken.Schema()) {
		t.Fatalf("status --check: exit %d, want 1 and DRIFT:\n%s", st.code, st.stdout)
	}

	// Conflict removed: the rerun touches only the one that is behind.
	if _, err := d.Owner.Exec(`DROP TABLE ` + tenancy.QuoteIdent(broken.Schema()) + `.widgets`); err != nil {
		t.Fatal(err)
	}
	rerun := migrate(t, d.OwnerURL, d.AppURL, next, "up", "--json")
	rep = rerun.report(t)
	if rerun.code != 0 || !rep.OK || rep.Counts["migrated"] != 1 || rep.target(t, broken.Schema()).Status != "migrated" {
		t.Fatalf("rerun: exit %d counts %v, want exactly %s migrated", rerun.code, rep.Counts, broken.Schema())
	}
	if got := rep.target(t, broken.Schema()).Applied; len(got) != 1 || got[0] != versions[0] {
		t.Fatalf("rerun applied %v to %s, want %v", got, broken.Schema(), versions)
	}
}

func TestUp_SecondRunExitsWithClearMessageWhileLockIsHeld(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	ctx := context.Background()
	conn, err := d.Owner.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`SELECT pg_advisory_xact_lock($1)`, tenancy.MigrationLockKey); err != nil {
		t.Fatal(err)
	}
	r := migrate(t, d.OwnerURL, d.AppURL, nil, "up", "--wait", "0")
	if r.code != 1 || !strings.Contains(r.stderr, "another migrate run holds the migration lock") || !strings.Contains(r.stderr, "backend pid") {
		t.Fatalf("up while locked: exit %d, stderr %q; want exit 1 and a message naming the holder", r.code, r.stderr)
	}
	if r = migrate(t, d.OwnerURL, d.AppURL, nil, "up", "--wait", "0", "--json"); r.code != 1 || r.report(t).OK || !strings.Contains(r.report(t).Error, "lock") {
		t.Fatalf("up --json while locked: exit %d, stdout %q; want exit 1 and a report naming the lock", r.code, r.stdout)
	}
	r = migrate(t, d.OwnerURL, d.AppURL, nil, "up", "--wait", "200ms")
	if r.code != 1 || !strings.Contains(r.stderr, "waiting up to 200ms") || !strings.Contains(r.stderr, "gave up") {
		t.Fatalf("up --wait while locked: exit %d, stderr %q", r.code, r.stderr)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if r = migrate(t, d.OwnerURL, d.AppURL, nil, "up", "--wait", "0"); r.code != 0 {
		t.Fatalf("up after the lock was released: exit %d\n%s", r.code, r.stderr)
	}
}

func TestDown_ReversesInOrderAcrossEveryTarget(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	tenants := premiumTenants(t, d, "down", 3)
	next, versions := withTenantMigrations(t, widgets, gadgets)
	if r := migrate(t, d.OwnerURL, d.AppURL, next, "up"); r.code != 0 {
		t.Fatalf("up: exit %d\n%s", r.code, r.stdout)
	}
	base := testenv.LatestTenantVersion(t)

	r := migrate(t, d.OwnerURL, d.AppURL, next, "down", "--to", fmt.Sprint(base), "--json")
	if r.code != 0 {
		t.Fatalf("down --to %d: exit %d\n%s%s", base, r.code, r.stdout, r.stderr)
	}
	rep := r.report(t)
	schemas := []string{"public"}
	for _, tn := range tenants {
		schemas = append(schemas, tn.Schema())
	}
	for _, s := range schemas {
		x := rep.target(t, s)
		if x.Status != "migrated" || len(x.Applied) != 2 || x.Applied[0] != versions[1] || x.Applied[1] != versions[0] || i64(x.To) != base {
			t.Errorf("%s: %+v, want %d then %d reverted, now at %d", s, x, versions[1], versions[0], base)
		}
		var tables int
		if err := d.Owner.QueryRow(`SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename IN ('widgets', 'gadgets')`, s).Scan(&tables); err != nil || tables != 0 {
			t.Errorf("%s still has %d of widgets/gadgets (%v)", s, tables, err)
		}
	}
	for _, x := range rep.Targets {
		if x.Kind == "control" {
			t.Errorf("down touched the control plane: %+v", x)
		}
	}
	st := migrate(t, d.OwnerURL, d.AppURL, next, "status", "--json").status(t)
	for _, x := range st.Targets {
		if x.Kind != "control" && (i64(x.Current) != base || x.State != "behind" || x.StaleBookkeeping) {
			t.Errorf("status of %s after down: %+v, want at %d (behind %d), bookkeeping in step", x.Schema, x, base, versions[1])
		}
	}
	if r := migrate(t, d.OwnerURL, d.AppURL, next, "up", "--json"); r.report(t).Counts["migrated"] != 4 {
		t.Fatalf("up after down: %v, want public and 3 premium migrated again", r.report(t).Counts)
	}
}

func TestDown_RejectsMissingTarget(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	if r := migrate(t, d.OwnerURL, d.AppURL, nil, "down"); r.code != 2 || !strings.Contains(r.stderr, "--to N") {
		t.Fatalf("down without --to: exit %d, stderr %q; want usage and exit 2", r.code, r.stderr)
	}
}

func TestTenant_MigratesOnlyThatTenant(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	tenants := premiumTenants(t, d, "one", 2)
	next, _ := withTenantMigrations(t, widgets)
	r := migrate(t, d.OwnerURL, d.AppURL, next, "tenant", tenants[0].Identifier, "--json")
	if r.code != 0 {
		t.Fatalf("tenant %s: exit %d\n%s%s", tenants[0].Identifier, r.code, r.stdout, r.stderr)
	}
	if rep := r.report(t); len(rep.Targets) != 1 || rep.Targets[0].Schema != tenants[0].Schema() || rep.Targets[0].Status != "migrated" {
		t.Fatalf("tenant report %+v, want only %s migrated", rep.Targets, tenants[0].Schema())
	}
	st := migrate(t, d.OwnerURL, d.AppURL, next, "status", "--json").status(t)
	for _, x := range st.Targets {
		want := testenv.LatestTenantVersion(t)
		if x.Schema == tenants[0].Schema() || x.Kind == "control" {
			want = x.Latest
		}
		if i64(x.Current) != want {
			t.Errorf("%s at %d, want %d", x.Schema, i64(x.Current), want)
		}
	}
	if r := migrate(t, d.OwnerURL, d.AppURL, next, "tenant", "no-such-tenant"); r.code != 1 || !strings.Contains(r.stderr, "not found") {
		t.Fatalf("unknown tenant: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestNew_WritesNextNumberedFileWithUpAndDown(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, sub := range []string{"tenant", "control"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "tenant", "00007_old.sql"), []byte("-- +goose Up\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := migrate(t, "", "", nil, "new", "--dir", dir, "add_widgets")
	path := filepath.Join(dir, "tenant", "00008_add_widgets.sql")
	if r.code != 0 || !strings.Contains(r.stdout, path) {
		t.Fatalf("new: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	body, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if up, down := strings.Index(string(body), "-- +goose Up"), strings.Index(string(body), "-- +goose Down"); up != 0 || down < up {
		t.Fatalf("file has no Up then Down section:\n%s", body)
	}
	if !strings.Contains(string(body), "Expand, then contract") {
		t.Errorf("tenant template does not state the expand/contract rule:\n%s", body)
	}
	if !strings.Contains(string(body), "PRIMARY KEY (tenant_id, id)") {
		t.Errorf("tenant template does not show keys that lead with tenant_id:\n%s", body)
	}
	if r := migrate(t, "", "", nil, "new", "--dir", dir, "--control", "audit_log"); r.code != 0 {
		t.Fatalf("new --control: exit %d %s", r.code, r.stderr)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "control", "00001_audit_log.sql")); err != nil {
		t.Fatalf("control migration not written: %v", err)
	} else if !strings.Contains(string(b), "Expand, then contract") {
		t.Errorf("control template does not state the expand/contract rule:\n%s", b)
	}
	for _, bad := range []string{"Add-Widgets", "1st", ""} {
		if r := migrate(t, "", "", nil, "new", "--dir", dir, bad); r.code != 2 {
			t.Errorf("new %q: exit %d, want 2", bad, r.code)
		}
	}
}
