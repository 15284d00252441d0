package http_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/testenv"
	"github.com/your-org/tenantkit/migrations"
)

// expandMigration adds a column, a table and an index, as a release's
// "expand" step does; the test appends it to the kit's tenant migrations
// (whatever they are in a fork) instead of shipping it in migrations/.
const expandMigration = `-- +goose Up
ALTER TABLE projects ADD COLUMN zd_extra text NOT NULL DEFAULT 'x';
CREATE TABLE zd_notes (
    id        uuid NOT NULL DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL,
    body      text NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
ALTER TABLE zd_notes ENABLE ROW LEVEL SECURITY;
ALTER TABLE zd_notes FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON zd_notes
    USING (tenant_id = nullif(current_setting('app.current_tenant', true), '')::uuid)
    WITH CHECK (tenant_id = nullif(current_setting('app.current_tenant', true), '')::uuid);
CREATE INDEX projects_zd_name_idx ON projects (tenant_id, name);

-- +goose Down
DROP INDEX projects_zd_name_idx;
DROP TABLE zd_notes;
ALTER TABLE projects DROP COLUMN zd_extra;
`

// withExpandMigration returns the tenant migrations plus expandMigration as
// the next version.
func withExpandMigration(t *testing.T) fs.FS {
	t.Helper()
	base := migrations.Tenant()
	out := fstest.MapFS{}
	names, err := fs.Glob(base, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	var latest int64
	for _, n := range names {
		b, err := fs.ReadFile(base, n)
		if err != nil {
			t.Fatal(err)
		}
		out[n] = &fstest.MapFile{Data: b}
		if v, err := goose.NumericComponent(n); err == nil {
			latest = max(latest, v)
		}
	}
	out[fmt.Sprintf("%05d_zd_expand.sql", latest+1)] = &fstest.MapFile{Data: []byte(expandMigration)}
	return out
}

// progressHook runs onShared once public has been migrated, before the
// premium schemas are: the window in which they lag the shared tables.
type progressHook struct{ onShared func() }

func (h progressHook) Begin(string, int) {}
func (h progressHook) Done(r tenancy.TargetResult) {
	if r.Kind == tenancy.KindShared && h.onShared != nil {
		h.onShared()
	}
}

// Invariant 13: migrate up (the real migrator) adds a column, a table and an
// index while both tiers are served, and a second api process starts between
// public and the premium schemas: no 5xx, and no response carries another
// tenant's rows, on the running process or the new one.
func TestZeroDowntime_MigrateUpUnderLoadNever5xx(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	first := testenv.NewStackOn(t, d, testenv.StackOptions{})
	var tenants []*tenancy.Tenant
	for i := range 3 {
		tenants = append(tenants, d.Tenant(t, fmt.Sprintf("zd-prem-%d", i), tenancy.TierPremium),
			d.Tenant(t, fmt.Sprintf("zd-std-%d", i), tenancy.TierStandard))
	}
	tokens := map[*tenancy.Tenant]string{}
	for _, tn := range tenants {
		tokens[tn] = testenv.Token(t, tn.ID.String())
	}

	var (
		urls     sync.Map // "first", "second" -> base URL
		requests atomic.Int64
		mu       sync.Mutex
		failures []string
	)
	urls.Store("first", first.URL)
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(failures) < 20 {
			failures = append(failures, fmt.Sprintf(format, args...))
		}
	}
	client := &http.Client{Timeout: 30 * time.Second}
	// hit lists then creates a project for tn on the api at base, checking
	// the status and that every listed project is tn's (names carry the
	// tenant's identifier).
	hit := func(ctx context.Context, base string, tn *tenancy.Tenant, n int) {
		do := func(method string, body []byte) ([]byte, bool) {
			req, _ := http.NewRequestWithContext(ctx, method, base+"/api/v1/projects", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+tokens[tn])
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				if ctx.Err() == nil {
					fail("%s %s as %s: %v", method, base, tn.Identifier, err)
				}
				return nil, false
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			requests.Add(1)
			if resp.StatusCode >= 500 {
				fail("%s as %s (%s): %d %s", method, tn.Identifier, tn.Isolation, resp.StatusCode, b)
				return nil, false
			}
			return b, resp.StatusCode < 300
		}
		body, ok := do(http.MethodGet, nil)
		if ok {
			var page apiPage
			if err := json.Unmarshal(body, &page); err != nil {
				fail("list as %s: %v", tn.Identifier, err)
			}
			for _, p := range page.Items {
				if !strings.HasPrefix(p.Name, tn.Identifier+"/") {
					fail("%s got a foreign row: %+v", tn.Identifier, p)
				}
			}
		}
		do(http.MethodPost, []byte(fmt.Sprintf(`{"name":%q}`, fmt.Sprintf("%s/%d", tn.Identifier, n))))
	}
	// Warm the first api: its connections hold prepared statements of both tiers.
	for i, tn := range tenants {
		for j := range 3 {
			hit(context.Background(), first.URL, tn, -(i*10 + j))
		}
	}

	// Load: workers cycle through the tenants and the apis started so far,
	// until the migration is done (bounded: at most 60 s and 3,000 requests).
	ctx, stop := context.WithTimeout(context.Background(), 60*time.Second)
	defer stop()
	migrated := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := w; ctx.Err() == nil && requests.Load() < 3000; n += 4 {
				select {
				case <-migrated:
					return
				default:
				}
				base := first.URL
				if v, ok := urls.Load("second"); ok && n%2 == 1 {
					base = v.(string)
				}
				hit(ctx, base, tenants[n%len(tenants)], n)
			}
		}()
	}

	fleet := &tenancy.Fleet{
		Migrator: &tenancy.Migrator{OwnerDSN: d.OwnerURL, AppRole: testenv.AppRole, Control: migrations.Control(), Tenant: withExpandMigration(t)},
		Owner:    d.Owner, Concurrency: 1, Lock: tenancy.LockOptions{Wait: time.Minute},
		Progress: progressHook{onShared: func() {
			// A new api process starts now, while the premium schemas lag
			// public, and serves every tenant before they catch up.
			app, err := tenancy.OpenDB(d.AppURL, tenancy.PoolConfig{MaxIdle: 4, MaxOverflow: 4})
			if err != nil {
				fail("open second pool: %v", err)
				return
			}
			t.Cleanup(func() { app.Close() })
			d2 := *d
			d2.App = app
			second := testenv.NewStackOn(t, &d2, testenv.StackOptions{})
			for i, tn := range tenants {
				hit(ctx, second.URL, tn, 1000+i)
			}
			urls.Store("second", second.URL)
		}},
	}
	report, err := fleet.Up(ctx, false)
	if err != nil {
		t.Fatalf("migrate up: %v", err)
	}
	if !report.OK() {
		for _, r := range report.Results {
			t.Logf("%s %s %v", r.Schema, r.Outcome, r.Err)
		}
		t.Fatal("migrate up did not migrate every target")
	}
	// A few more requests on both apis once everything is migrated.
	for i, tn := range tenants {
		hit(ctx, first.URL, tn, 2000+i)
		if v, ok := urls.Load("second"); ok {
			hit(ctx, v.(string), tn, 3000+i)
		}
	}
	close(migrated)
	wg.Wait()
	if _, ok := urls.Load("second"); !ok {
		t.Error("the second api never started")
	}
	for _, f := range failures {
		t.Error(f)
	}
	t.Logf("%d requests during and around the migration", requests.Load())
}
