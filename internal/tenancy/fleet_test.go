package tenancy_test

import (
	"context"
	"fmt"
	"io/fs"
	"sync"
	"testing"
	"time"

	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/testenv"
	"github.com/your-org/tenantkit/migrations"
)

// appliedOnce fails if it runs twice in a schema, and counts its runs.
var appliedOnce = testenv.Migration{Name: "applied_once", SQL: `-- +goose Up
-- tenantkit:shared applied_once
CREATE TABLE applied_once (n int);
INSERT INTO applied_once VALUES (1);
SELECT pg_sleep(0.02);

-- +goose Down
DROP TABLE applied_once;
`}

// tenantMigrations is the embedded tenant set plus extra, numbered after it.
func tenantMigrations(t *testing.T, extra ...testenv.Migration) fs.FS {
	t.Helper()
	f, _ := testenv.TenantMigrations(t, extra...)
	return f
}

func fleetFor(d *testenv.DB, tenantFS fs.FS) *tenancy.Fleet {
	m := d.Migrator()
	m.Tenant = tenantFS
	return &tenancy.Fleet{Migrator: m, Owner: d.Owner, Concurrency: 3, Lock: tenancy.LockOptions{Wait: 2 * time.Minute}}
}

func TestFleetUp_ConcurrentRunsNeverApplyTwiceOrInterleave(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	var schemas []string
	for i := range 6 {
		schemas = append(schemas, d.Tenant(t, fmt.Sprintf("conc-%d", i), tenancy.TierPremium).Schema())
	}
	schemas = append(schemas, "public")
	next, versions := testenv.TenantMigrations(t, appliedOnce)

	reports := make([]*tenancy.Report, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range reports {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reports[i], errs[i] = fleetFor(d, next).Up(context.Background(), false)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil || !reports[i].OK() {
			t.Fatalf("run %d: err %v, report ok %v: %+v", i, err, reports[i] != nil && reports[i].OK(), reports[i])
		}
	}
	// One run did all the work; the other waited for the lock and found
	// everything current: they did not interleave.
	a, b := reports[0].Count(tenancy.Migrated), reports[1].Count(tenancy.Migrated)
	if !(a == len(schemas) && b == 0) && !(a == 0 && b == len(schemas)) {
		t.Fatalf("migrated counts %d and %d, want one run to migrate all %d targets and the other none", a, b, len(schemas))
	}
	for _, s := range schemas {
		var rows, recorded int
		if err := d.Owner.QueryRow(`SELECT count(*) FROM ` + tenancy.QuoteIdent(s) + `.applied_once`).Scan(&rows); err != nil {
			t.Fatal(err)
		}
		if err := d.Owner.QueryRow(`SELECT count(*) FROM `+tenancy.QuoteIdent(s)+`.goose_db_version WHERE version_id = $1`, versions[0]).Scan(&recorded); err != nil {
			t.Fatal(err)
		}
		if rows != 1 || recorded != 1 {
			t.Errorf("%s: migration ran %d times, recorded %d times; want once", s, rows, recorded)
		}
	}
}

func TestFleetUp_MissingSchemaFailsOnlyThatTenant(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	gone := d.Tenant(t, "gone", tenancy.TierPremium)
	kept := d.Tenant(t, "kept", tenancy.TierPremium)
	if _, err := d.Owner.Exec(`DROP SCHEMA ` + tenancy.QuoteIdent(gone.Schema()) + ` CASCADE`); err != nil {
		t.Fatal(err)
	}
	rep, err := fleetFor(d, tenantMigrations(t, appliedOnce)).Up(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]tenancy.TargetResult{}
	for _, r := range rep.Results {
		byName[r.Schema] = r
	}
	if r := byName[gone.Schema()]; r.Outcome != tenancy.Failed || r.Err == nil {
		t.Fatalf("dropped schema: %+v, want failed (not silently recreated empty)", r)
	}
	if r := byName[kept.Schema()]; r.Outcome != tenancy.Migrated {
		t.Fatalf("other tenant: %s, want migrated", r.Outcome)
	}
	var exists bool
	_ = d.Owner.QueryRow(`SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, gone.Schema()).Scan(&exists)
	if exists {
		t.Fatal("up recreated a dropped tenant schema")
	}
}

func TestFleetUp_PublicFailureSkipsPremiumSchemas(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	tn := d.Tenant(t, "after-public", tenancy.TierPremium)
	if _, err := d.Owner.Exec(`CREATE TABLE public.applied_once (x int)`); err != nil {
		t.Fatal(err)
	}
	rep, err := fleetFor(d, tenantMigrations(t, appliedOnce)).Up(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() {
		t.Fatal("report OK after public failed")
	}
	for _, r := range rep.Results {
		if r.Schema == "public" && r.Outcome != tenancy.Failed || r.Schema == tn.Schema() && r.Outcome != tenancy.Skipped {
			t.Errorf("%s: %s, want public failed and premium skipped", r.Schema, r.Outcome)
		}
	}
}

// The app role's grants on a new table commit with the migration that
// creates it: right after `up`, a tenant can use the table through the app pool.
func TestFleetUp_NewTableIsUsableByTheAppRole(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	ctx := context.Background()
	premium := d.Tenant(t, "granted", tenancy.TierPremium)
	standard := d.Tenant(t, "granted-std", tenancy.TierStandard)
	rep, err := fleetFor(d, tenantMigrations(t, testenv.Migration{Name: "notes", SQL: `-- +goose Up
CREATE TABLE notes (id serial, tenant_id uuid NOT NULL, body text NOT NULL, PRIMARY KEY (tenant_id, id));
ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
ALTER TABLE notes FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON notes
    USING (tenant_id = nullif(current_setting('app.current_tenant', true), '')::uuid)
    WITH CHECK (tenant_id = nullif(current_setting('app.current_tenant', true), '')::uuid);
-- +goose Down
DROP TABLE notes;
`})).Up(ctx, false)
	if err != nil || !rep.OK() {
		t.Fatalf("up: %v %+v", err, rep)
	}
	for _, tn := range []*tenancy.Tenant{premium, standard} {
		if _, err := d.App.ExecContext(tenancy.WithTenant(ctx, tn), `INSERT INTO notes (tenant_id, body) VALUES ($1, 'hi')`, tn.ID); err != nil {
			t.Errorf("%s (%s) cannot write the new table as the app role: %v", tn.Identifier, tn.Isolation, err)
		}
	}
}

// A database migrated before the bookkeeping existed has no rows: the first
// up runs goose on each schema (applying nothing) and fills them in.
func TestFleetUp_FillsMissingBookkeepingWithoutApplying(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	tn := d.Tenant(t, "unbooked", tenancy.TierPremium)
	if _, err := d.Owner.Exec(`DELETE FROM tenancy.schema_versions`); err != nil {
		t.Fatal(err)
	}
	rep, err := fleetFor(d, migrations.Tenant()).Up(context.Background(), false)
	if err != nil || !rep.OK() || !rep.NothingToDo() {
		t.Fatalf("up over empty bookkeeping: %v, %+v; want everything current", err, rep)
	}
	latest, _ := d.Migrator().LatestTenantVersion()
	for _, s := range []string{"public", tn.Schema()} {
		if got := bookkept(t, d, s); got != latest {
			t.Errorf("%s bookkept at %d after up, want %d", s, got, latest)
		}
	}
}

// Workers reuse one connection from schema to schema: whatever a migration
// SETs for its session must not follow it into the next schema.
func TestFleetUp_SessionSettingsDoNotLeakToTheNextSchema(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	var schemas []string
	for i := range 4 {
		schemas = append(schemas, d.Tenant(t, fmt.Sprintf("leak-%d", i), tenancy.TierPremium).Schema())
	}
	f := fleetFor(d, tenantMigrations(t, testenv.Migration{Name: "leaky", SQL: `-- +goose Up
-- tenantkit:shared leak_probe
CREATE TABLE leak_probe (x int);
SET default_transaction_read_only = on;
SET search_path TO public;

-- +goose Down
DROP TABLE leak_probe;
`}))
	f.Concurrency = 1
	rep, err := f.Up(context.Background(), false)
	if err != nil || !rep.OK() {
		for _, r := range rep.Results {
			t.Logf("%s: %s %v", r.Schema, r.Outcome, r.Err)
		}
		t.Fatalf("up: %v; a migration's session settings leaked into the next schema", err)
	}
	for _, s := range append(schemas, "public") {
		var ok bool
		if err := d.Owner.QueryRow(`SELECT to_regclass($1) IS NOT NULL`, s+".leak_probe").Scan(&ok); err != nil || !ok {
			t.Errorf("%s has no leak_probe table (%v)", s, err)
		}
	}
}
