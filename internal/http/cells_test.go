package http_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/testenv"
)

// twoCells is a control plane on the main server with a second cell,
// "cell2", on the second, real Postgres server.
func twoCells(t *testing.T) (d, d2 *testenv.DB) {
	t.Helper()
	d = testenv.Postgres(t)
	d2 = testenv.SecondCluster(t).Postgres(t)
	d.AddCell("cell2", d2)
	return d, d2
}

type placed struct {
	tn    tenancy.Tenant
	token string
	on    *testenv.DB
}

// placeAll creates, through the admin API, one tenant of every isolation on
// every cell and checks the placement the API returns.
func placeAll(t *testing.T, s *testenv.Stack, cells map[string]*testenv.DB, prefix string) []*placed {
	t.Helper()
	var out []*placed
	for _, cell := range []string{"default", "cell2"} {
		for _, iso := range []tenancy.Isolation{tenancy.IsolationRLS, tenancy.IsolationSchema, tenancy.IsolationDatabase} {
			id := fmt.Sprintf("%s-%s-%s", prefix, strings.ReplaceAll(cell, "cell2", "c2"), iso)
			r := s.Do(t, "POST", "/admin/v1/tenants", map[string]any{"identifier": id, "name": id, "isolation": iso, "cell": cell}, testenv.AsAdmin()...)
			if r.Status != http.StatusCreated {
				t.Fatalf("create %s: %d %s", id, r.Status, r.Body)
			}
			var tn tenancy.Tenant
			r.JSON(t, &tn)
			if tn.Cell != cell || tn.Isolation != iso || tn.Status != tenancy.StatusActive {
				t.Fatalf("created %s placed %s/%s status %s, want %s/%s active", id, tn.Cell, tn.Isolation, tn.Status, cell, iso)
			}
			out = append(out, &placed{tn: tn, token: testenv.Token(t, tn.ID.String()), on: cells[cell]})
		}
	}
	return out
}

// rowsWhere counts a tenant's projects where they physically are (as the
// superuser owner, which row-level security does not restrict).
func rowsWhere(t *testing.T, p *placed) int {
	t.Helper()
	ctx := context.Background()
	db := p.on.Owner
	table := "public.projects"
	switch p.tn.Isolation {
	case tenancy.IsolationSchema:
		table = tenancy.QuoteIdent(tenancy.SchemaName(p.tn.Identifier)) + ".projects"
	case tenancy.IsolationDatabase:
		dsn, err := tenancy.WithDatabase(p.on.OwnerURL, tenancy.DatabaseName(p.on.Name, p.tn.Identifier))
		if err != nil {
			t.Fatal(err)
		}
		if db, err = sql.Open("pgx", dsn); err != nil {
			t.Fatal(err)
		}
		defer db.Close()
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM `+table+` WHERE tenant_id = $1`, p.tn.ID).Scan(&n); err != nil {
		t.Fatalf("count %s rows in %s on its cell: %v", p.tn.Identifier, table, err)
	}
	return n
}

// Tenants of all three isolations on two real Postgres servers, under
// concurrent load through the HTTP stack: exact counts, each tenant's rows
// only where its placement says, every cross-tenant access a 404, and
// deletion leaves nothing behind on either server.
func TestCells_AllIsolationsOnTwoServersStayIsolated(t *testing.T) {
	t.Parallel()
	d, d2 := twoCells(t)
	// Cached as cmd/api caches: the placement travels with the cached tenant.
	s := testenv.NewStackOn(t, d, testenv.StackOptions{})
	tenants := placeAll(t, s, map[string]*testenv.DB{"default": d, "cell2": d2}, "iso")
	c := client{http: s.Server.Client(), base: s.URL}

	// Concurrent creates: 6 tenants x 4 goroutines x 5 projects.
	const workers, each = 4, 5
	ids := make([][]string, len(tenants))
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, len(tenants)*workers)
	for i, p := range tenants {
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := 0; k < each; k++ {
					name := fmt.Sprintf("%s/%d/%d", p.tn.Identifier, w, k)
					status, body, err := c.do("POST", "/api/v1/projects", p.token, map[string]string{"name": name})
					var pr apiProject
					if err != nil || status != http.StatusCreated || json.Unmarshal(body, &pr) != nil {
						errs <- fmt.Errorf("%s: %d %s %v", name, status, body, err)
						return
					}
					mu.Lock()
					ids[i] = append(ids[i], pr.ID)
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, p := range tenants {
		all, err := c.listAll(p.token)
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != workers*each {
			t.Errorf("%s lists %d projects, want %d", p.tn.Identifier, len(all), workers*each)
		}
		for _, pr := range all {
			if !strings.HasPrefix(pr.Name, p.tn.Identifier+"/") {
				t.Errorf("%s lists a foreign project %+v", p.tn.Identifier, pr)
			}
		}
		if n := rowsWhere(t, p); n != workers*each {
			t.Errorf("%s (%s on %s) has %d rows at its placement, want %d", p.tn.Identifier, p.tn.Isolation, p.tn.Cell, n, workers*each)
		}
	}
	// Every tenant probes one project of every other: 404 whatever the method.
	for i, p := range tenants {
		for j, q := range tenants {
			if i == j {
				continue
			}
			for _, m := range []string{"GET", "PATCH", "DELETE"} {
				var body any
				if m == "PATCH" {
					body = map[string]string{"name": "stolen"}
				}
				status, b, err := c.do(m, "/api/v1/projects/"+ids[j][0], p.token, body)
				if err != nil || status != http.StatusNotFound || !strings.Contains(string(b), `"not_found"`) {
					t.Errorf("%s %s of %s's project: %d %s %v, want 404 not_found", p.tn.Identifier, m, q.tn.Identifier, status, b, err)
				}
			}
		}
	}
	// Destroy every tenant: nothing left on either server.
	for _, p := range tenants {
		if r := s.Do(t, "DELETE", "/admin/v1/tenants/"+p.tn.ID.String(), nil, testenv.AsAdmin()...); r.Status != http.StatusNoContent {
			t.Fatalf("delete %s: %d %s", p.tn.Identifier, r.Status, r.Body)
		}
		assertGone(t, p)
	}
	// A database tenant re-created under the same identifier is served at
	// once from its new, empty database (the destroyed one's pool is gone).
	for _, p := range tenants {
		if p.tn.Isolation != tenancy.IsolationDatabase {
			continue
		}
		r := s.Do(t, "POST", "/admin/v1/tenants", map[string]any{"identifier": p.tn.Identifier, "name": "again",
			"isolation": "database", "cell": p.tn.Cell}, testenv.AsAdmin()...)
		var tn tenancy.Tenant
		if r.Status != http.StatusCreated {
			t.Fatalf("re-create %s: %d %s", p.tn.Identifier, r.Status, r.Body)
		}
		r.JSON(t, &tn)
		res := s.Do(t, "GET", "/api/v1/projects", nil, testenv.AsTenant(t, &tn)...)
		var pg apiPage
		if res.Status != http.StatusOK || json.Unmarshal(res.Body, &pg) != nil || len(pg.Items) != 0 {
			t.Errorf("re-created %s: %d %s, want 200 with no projects", tn.Identifier, res.Status, res.Body)
		}
	}
}

// assertGone checks that nothing of a destroyed tenant is left on its cell.
func assertGone(t *testing.T, p *placed) {
	t.Helper()
	ctx := context.Background()
	var n int
	switch p.tn.Isolation {
	case tenancy.IsolationRLS:
		n = rowsWhere(t, p)
	case tenancy.IsolationSchema:
		if err := p.on.Owner.QueryRowContext(ctx, `SELECT count(*) FROM pg_namespace WHERE nspname = $1`, tenancy.SchemaName(p.tn.Identifier)).Scan(&n); err != nil {
			t.Fatal(err)
		}
	case tenancy.IsolationDatabase:
		if err := p.on.Owner.QueryRowContext(ctx, `SELECT count(*) FROM pg_database WHERE datname = $1`, tenancy.DatabaseName(p.on.Name, p.tn.Identifier)).Scan(&n); err != nil {
			t.Fatal(err)
		}
	}
	var reg int
	if err := p.on.Owner.QueryRowContext(ctx, `SELECT count(*) FROM tenancy.tenants WHERE id = $1`, p.tn.ID).Scan(&reg); err != nil {
		t.Fatal(err)
	}
	if n != 0 || reg != 0 {
		t.Errorf("destroyed %s (%s on %s) left %d rows/schemas/databases and %d registry rows on its cell", p.tn.Identifier, p.tn.Isolation, p.tn.Cell, n, reg)
	}
}

// Without an explicit cell, a tenant goes to the cell with the fewest
// tenants of its isolation; an unknown cell is a 400 naming the field.
func TestCells_PlacementPolicyFillsTheEmptiestCell(t *testing.T) {
	t.Parallel()
	d, _ := twoCells(t)
	s := testenv.NewStackOn(t, d, testenv.StackOptions{CacheDisabled: true})
	create := func(id string, body map[string]any) (int, tenancy.Tenant, []byte) {
		body["identifier"], body["name"] = id, id
		r := s.Do(t, "POST", "/admin/v1/tenants", body, testenv.AsAdmin()...)
		var tn tenancy.Tenant
		if r.Status == http.StatusCreated {
			r.JSON(t, &tn)
		}
		return r.Status, tn, r.Body
	}
	var got []string
	for i := 0; i < 4; i++ {
		status, tn, body := create(fmt.Sprintf("pol-rls-%d", i), map[string]any{"tier": "standard"})
		if status != http.StatusCreated {
			t.Fatalf("create: %d %s", status, body)
		}
		got = append(got, tn.Cell)
	}
	if strings.Join(got, ",") != "default,cell2,default,cell2" {
		t.Fatalf("rls tenants placed on %v, want alternating from default", got)
	}
	// Schema tenants are counted apart: two on cell2 explicitly, then default.
	for i := 0; i < 2; i++ {
		if status, _, body := create(fmt.Sprintf("pol-sch-%d", i), map[string]any{"tier": "premium", "cell": "cell2"}); status != http.StatusCreated {
			t.Fatalf("create: %d %s", status, body)
		}
	}
	if _, tn, _ := create("pol-sch-x", map[string]any{"tier": "premium"}); tn.Cell != "default" || tn.Isolation != tenancy.IsolationSchema {
		t.Fatalf("premium tenant placed %s/%s, want default/schema", tn.Cell, tn.Isolation)
	}
	status, _, body := create("pol-bad", map[string]any{"cell": "nowhere"})
	if status != http.StatusBadRequest || !strings.Contains(string(body), `"cell"`) {
		t.Fatalf("unknown cell: %d %s, want 400 naming cell", status, body)
	}
	var n int
	if err := d.Owner.QueryRow(`SELECT count(*) FROM tenancy.tenants WHERE identifier = 'pol-bad'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("a refused tenant left %d registry rows (%v)", n, err)
	}
}
