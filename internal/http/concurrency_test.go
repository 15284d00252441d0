package http_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/testenv"
)

type apiProject struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
}

type apiPage struct {
	Items      []apiProject `json:"items"`
	NextCursor *string      `json:"next_cursor"`
}

// client calls the stack from any goroutine: errors are returned, not fatal.
type client struct {
	http *http.Client
	base string
}

func (c client) do(method, path, token string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// listAll pages through the tenant's projects.
func (c client) listAll(token string) ([]apiProject, error) {
	var all []apiProject
	path := "/api/v1/projects?limit=100"
	for {
		status, body, err := c.do("GET", path, token, nil)
		if err != nil {
			return nil, err
		}
		if status != http.StatusOK {
			return nil, fmt.Errorf("list: %d %s", status, body)
		}
		var p apiPage
		if err := json.Unmarshal(body, &p); err != nil {
			return nil, err
		}
		all = append(all, p.Items...)
		if p.NextCursor == nil {
			return all, nil
		}
		path = "/api/v1/projects?limit=100&cursor=" + *p.NextCursor
	}
}

// 8 tenants (4 premium, 4 standard) on a pool of at most 5 connections, 64
// goroutines reading, writing and probing each other's ids through the real
// HTTP stack: every response holds only the caller's rows, the final counts
// are exact, and afterwards no pooled connection carries a tenant (invariant 2).
func TestConcurrency_MixedLoadNeverCrossesTenants(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	pool, err := tenancy.OpenDB(d.AppURL, tenancy.PoolConfig{MaxIdle: 3, MaxOverflow: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	small := *d
	small.App = pool
	s := testenv.NewStackOn(t, &small, testenv.StackOptions{})

	type tenantState struct {
		tn    *tenancy.Tenant
		token string
		mu    sync.Mutex
		live  map[string]string // id -> name, as the test expects it
	}
	var tenants []*tenantState
	for i := 0; i < 8; i++ {
		tier, kind := tenancy.TierPremium, "p"
		if i%2 == 1 {
			tier, kind = tenancy.TierStandard, "s"
		}
		tn := small.Tenant(t, fmt.Sprintf("load-%s%d", kind, i), tier)
		tenants = append(tenants, &tenantState{tn: tn, token: testenv.Token(t, tn.ID.String()), live: map[string]string{}})
	}
	c := client{http: s.Server.Client(), base: s.URL}
	// Ids of every tenant, for cross-tenant probes.
	var foreign sync.Map // id -> owner identifier
	var failures atomic.Int32
	fail := func(format string, args ...any) {
		if failures.Add(1) <= 20 {
			t.Errorf(format, args...)
		}
	}
	ownName := func(ts *tenantState, name string) bool { return strings.HasPrefix(name, ts.tn.Identifier+"/") }

	const goroutines, rounds = 64, 10
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			ts := tenants[g%len(tenants)]
			var mine []string
			for i := 0; i < rounds && failures.Load() == 0; i++ {
				name := fmt.Sprintf("%s/g%02d/%02d", ts.tn.Identifier, g, i)
				status, body, err := c.do("POST", "/api/v1/projects", ts.token, map[string]string{"name": name, "description": ts.tn.Identifier})
				var p apiProject
				if err != nil || status != http.StatusCreated || json.Unmarshal(body, &p) != nil || p.Name != name {
					fail("%s create: %d %s %v", name, status, body, err)
					return
				}
				ts.mu.Lock()
				ts.live[p.ID] = name
				ts.mu.Unlock()
				foreign.Store(p.ID, ts.tn.Identifier)
				mine = append(mine, p.ID)

				switch i % 4 {
				case 0, 2: // list: only own rows
					status, body, err := c.do("GET", "/api/v1/projects?limit=50", ts.token, nil)
					var pg apiPage
					if err != nil || status != http.StatusOK || json.Unmarshal(body, &pg) != nil {
						fail("%s list: %d %s %v", ts.tn.Identifier, status, body, err)
						return
					}
					for _, it := range pg.Items {
						if !ownName(ts, it.Name) || it.Description != ts.tn.Identifier && !strings.HasPrefix(it.Description, ts.tn.Identifier+"/") {
							fail("%s listed a foreign row %+v", ts.tn.Identifier, it)
						}
					}
				case 1: // patch an own project, read it back
					id := mine[len(mine)/2]
					desc := fmt.Sprintf("%s/patched-by-g%02d", ts.tn.Identifier, g)
					status, body, err := c.do("PATCH", "/api/v1/projects/"+id, ts.token, map[string]string{"description": desc})
					var got apiProject
					if err != nil || status != http.StatusOK || json.Unmarshal(body, &got) != nil || got.ID != id || got.Description != desc || !ownName(ts, got.Name) {
						fail("%s patch %s: %d %s %v", ts.tn.Identifier, id, status, body, err)
						return
					}
					status, body, err = c.do("GET", "/api/v1/projects/"+id, ts.token, nil)
					if err != nil || status != http.StatusOK || json.Unmarshal(body, &got) != nil || got.ID != id || !ownName(ts, got.Name) {
						fail("%s get %s: %d %s %v", ts.tn.Identifier, id, status, body, err)
					}
				case 3: // delete an own project
					id := mine[0]
					mine = mine[1:]
					status, body, err := c.do("DELETE", "/api/v1/projects/"+id, ts.token, nil)
					if err != nil || status != http.StatusNoContent {
						fail("%s delete %s: %d %s %v", ts.tn.Identifier, id, status, body, err)
						return
					}
					ts.mu.Lock()
					delete(ts.live, id)
					ts.mu.Unlock()
				}

				// Probe one id of another tenant: always 404, whatever the method.
				foreign.Range(func(k, v any) bool {
					if v.(string) == ts.tn.Identifier {
						return true
					}
					method := [...]string{"GET", "PATCH", "DELETE"}[(g+i)%3]
					var body any
					if method == "PATCH" {
						body = map[string]string{"name": "stolen"}
					}
					status, resp, err := c.do(method, "/api/v1/projects/"+k.(string), ts.token, body)
					if err != nil || status != http.StatusNotFound {
						fail("%s %s of %s's project %s: %d %s %v", ts.tn.Identifier, method, v, k, status, resp, err)
					}
					return false
				})
			}
		}(g)
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	// Final state: exactly the expected projects, unchanged by foreign probes.
	for _, ts := range tenants {
		got, err := c.listAll(ts.token)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(ts.live) {
			t.Errorf("%s: %d projects over HTTP, want %d", ts.tn.Identifier, len(got), len(ts.live))
		}
		for _, p := range got {
			if want, ok := ts.live[p.ID]; !ok || p.Name != want {
				t.Errorf("%s: unexpected project %+v", ts.tn.Identifier, p)
			}
		}
		var n int
		q := `SELECT count(*) FROM ` + tenancy.QuoteIdent(ts.tn.Schema()) + `.projects WHERE tenant_id = $1 AND name NOT LIKE '%stolen%'`
		if err := d.Owner.QueryRow(q, ts.tn.ID).Scan(&n); err != nil || n != len(ts.live) {
			t.Errorf("%s: %d rows in %s (%v), want %d", ts.tn.Identifier, n, ts.tn.Schema(), err, len(ts.live))
		}
	}
	var total int
	if err := d.Owner.QueryRow(`SELECT count(*) FROM public.projects`).Scan(&total); err != nil {
		t.Fatal(err)
	}
	standard := 0
	for _, ts := range tenants {
		if ts.tn.Isolation == tenancy.IsolationRLS {
			standard += len(ts.live)
		}
	}
	if total != standard {
		t.Errorf("public.projects holds %d rows, want the standard tenants' %d", total, standard)
	}

	assertPoolCarriesNoTenant(t, d, pool)
}

// assertPoolCarriesNoTenant checks invariant 2 on every idle connection of
// pool: default search_path, empty app.current_tenant, no open transaction.
func assertPoolCarriesNoTenant(t *testing.T, d *testenv.DB, pool *sql.DB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stats := pool.Stats()
	t.Logf("pool after load: %d open, %d idle, max %d, %d waits for a connection",
		stats.OpenConnections, stats.Idle, stats.MaxOpenConnections, stats.WaitCount)
	if stats.MaxOpenConnections != 5 || stats.Idle == 0 || stats.InUse != 0 {
		t.Fatalf("unexpected pool state %+v", stats)
	}
	var inTx int
	if err := d.Owner.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND usename = $1 AND state LIKE 'idle in transaction%'`, testenv.AppRole).Scan(&inTx); err != nil || inTx != 0 {
		t.Errorf("%d app connections are idle inside a transaction (%v)", inTx, err)
	}
	var wantPath string
	if err := d.Owner.QueryRowContext(ctx, `SELECT reset_val FROM pg_settings WHERE name = 'search_path'`).Scan(&wantPath); err != nil {
		t.Fatal(err)
	}
	// Hold every idle connection at once, so each is a different backend.
	conns := make([]*sql.Conn, stats.Idle)
	for i := range conns {
		c, err := pool.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	pids := map[int]bool{}
	for _, c := range conns {
		var pid int
		var tenant, path string
		err := c.QueryRowContext(ctx, `SELECT pg_backend_pid(), coalesce(current_setting('app.current_tenant', true), ''),
			current_setting('search_path')`).Scan(&pid, &tenant, &path)
		if err != nil {
			t.Fatal(err)
		}
		pids[pid] = true
		if tenant != "" || path != wantPath {
			t.Errorf("pooled connection %d carries app.current_tenant %q, search_path %q (want \"\" and %q)", pid, tenant, path, wantPath)
		}
	}
	// Behind PgBouncer (make test-pgbouncer) idle client connections share
	// fewer server connections: each statement above still ran on one.
	if len(pids) != len(conns) && d.Pooler == nil {
		t.Errorf("checked %d backends for %d idle connections", len(pids), len(conns))
	}
}
