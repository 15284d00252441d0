package tenantmove_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/tenantmove"
	"github.com/your-org/tenantkit/internal/testenv"
)

// chanQueue hands enqueued moves to the test, which runs them as the worker would.
type chanQueue chan uuid.UUID

func (q chanQueue) EnqueueMove(_ context.Context, id uuid.UUID) error { q <- id; return nil }

func seed(t testing.TB, owner *sql.DB, tn *tenancy.Tenant, n int) {
	t.Helper()
	tx, err := owner.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	s := tenancy.QuoteIdent(tn.Schema())
	for _, q := range []string{
		`SELECT set_config('app.current_tenant', $1, true)`,
		`INSERT INTO ` + s + `.projects (tenant_id, name, description) SELECT $1::uuid, 'seed ' || i, 'd' || i FROM generate_series(1, ` + fmt.Sprint(n) + `) i`,
		`INSERT INTO ` + s + `.reports (tenant_id, kind, status, result, finished_at) SELECT $1::uuid, 'project_summary', 'succeeded', jsonb_build_object('project_count', i), now() FROM generate_series(1, ` + fmt.Sprint(n) + `) i`,
	} {
		if _, err := tx.Exec(q, tn.ID.String()); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// projects returns id -> description of the tenant's projects where the
// registry says they live, and fails on any row of another tenant there.
func projects(t testing.TB, owner *sql.DB, id uuid.UUID) (map[uuid.UUID]string, int, tenancy.Isolation) {
	t.Helper()
	tn, err := (&tenancy.PGStore{DB: owner}).TenantByID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := owner.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`SELECT set_config('app.current_tenant', $1, true)`, id.String()); err != nil {
		t.Fatal(err)
	}
	s := tenancy.QuoteIdent(tn.Schema())
	rows, err := tx.Query(`SELECT id, description, tenant_id FROM `+s+`.projects WHERE tenant_id = $1 OR $2`, id, tn.Isolation == tenancy.IsolationSchema)
	if err != nil {
		t.Fatal(err)
	}
	out := map[uuid.UUID]string{}
	for rows.Next() {
		var pid, tid uuid.UUID
		var d string
		if err := rows.Scan(&pid, &d, &tid); err != nil {
			t.Fatal(err)
		}
		if tid != id {
			t.Errorf("foreign row %s of tenant %s in %s", pid, tid, tn.Schema())
		}
		out[pid] = d
	}
	rows.Close()
	var reports int
	if err := tx.QueryRow(`SELECT count(*) FROM `+s+`.reports WHERE tenant_id = $1`, id).Scan(&reports); err != nil {
		t.Fatal(err)
	}
	return out, reports, tn.Isolation
}

// client reads and writes one tenant through the API until stop, keeping
// what the API acknowledged: created, patched and deleted projects.
type client struct {
	s      *testenv.Stack
	auth   []string
	mu     sync.Mutex
	want   map[uuid.UUID]string // acknowledged state
	ids    []uuid.UUID
	n503   atomic.Int64
	writes atomic.Int64
	reads  atomic.Int64
	// longest run of consecutive 503s on writes
	pauseStart time.Time
	maxPause   time.Duration
	errs       []string
}

func (c *client) fail(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.errs) < 20 {
		c.errs = append(c.errs, fmt.Sprintf(format, args...))
	}
}

func (c *client) paused(res testenv.Response) bool {
	if res.Status != http.StatusServiceUnavailable {
		if !c.pauseStart.IsZero() {
			c.maxPause = max(c.maxPause, time.Since(c.pauseStart))
			c.pauseStart = time.Time{}
		}
		return false
	}
	c.n503.Add(1)
	if res.Header.Get("Retry-After") == "" || res.Code() != "unavailable" {
		c.fail("503 without Retry-After or code unavailable: %s", res.Body)
	}
	if c.pauseStart.IsZero() {
		c.pauseStart = time.Now()
	}
	time.Sleep(20 * time.Millisecond)
	return true
}

func (c *client) run(t *testing.T, stop <-chan struct{}) {
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		switch {
		case i%5 == 3 && len(c.ids) > 0: // patch
			id := c.ids[rnd.IntN(len(c.ids))]
			desc := fmt.Sprintf("patched %d", i)
			res := c.s.Do(t, "PATCH", "/api/v1/projects/"+id.String(), map[string]string{"description": desc}, c.auth...)
			if c.paused(res) {
				continue
			}
			if res.Status != http.StatusOK {
				c.fail("patch %s: %d %s", id, res.Status, res.Body)
				continue
			}
			c.writes.Add(1)
			c.want[id] = desc
		case i%7 == 5 && len(c.ids) > 0: // delete
			k := rnd.IntN(len(c.ids))
			id := c.ids[k]
			res := c.s.Do(t, "DELETE", "/api/v1/projects/"+id.String(), nil, c.auth...)
			if c.paused(res) {
				continue
			}
			if res.Status != http.StatusNoContent {
				c.fail("delete %s: %d %s", id, res.Status, res.Body)
				continue
			}
			c.writes.Add(1)
			delete(c.want, id)
			c.ids = append(c.ids[:k], c.ids[k+1:]...)
		case i%3 == 0: // read
			res := c.s.Do(t, "GET", "/api/v1/projects?limit=20", nil, c.auth...)
			if res.Status != http.StatusOK {
				c.fail("list: %d %s", res.Status, res.Body)
			}
			c.reads.Add(1)
			if len(c.ids) > 0 {
				id := c.ids[rnd.IntN(len(c.ids))]
				if res := c.s.Do(t, "GET", "/api/v1/projects/"+id.String(), nil, c.auth...); res.Status != http.StatusOK {
					c.fail("get acknowledged %s: %d %s", id, res.Status, res.Body)
				}
			}
		default: // create
			desc := fmt.Sprintf("created %d", i)
			res := c.s.Do(t, "POST", "/api/v1/projects", map[string]string{"name": "n", "description": desc}, c.auth...)
			if c.paused(res) {
				continue
			}
			if res.Status != http.StatusCreated {
				c.fail("create: %d %s", res.Status, res.Body)
				continue
			}
			var p struct{ ID uuid.UUID }
			res.JSON(t, &p)
			c.writes.Add(1)
			c.want[p.ID] = desc
			c.ids = append(c.ids, p.ID)
		}
	}
}

// TestMove_RoundTripUnderLoadKeepsEveryAcknowledgedWrite moves a tenant with
// 100k rows RLS -> schema -> RLS while a client reads and writes it and
// another tenant is under load.
func TestMove_RoundTripUnderLoadKeepsEveryAcknowledgedWrite(t *testing.T) {
	t.Parallel()
	q := make(chanQueue, 4)
	s := testenv.NewStack(t, testenv.StackOptions{MoveQueue: q})
	moving := s.Tenant(t, "moving", tenancy.TierStandard)
	other := s.Tenant(t, "bystander", tenancy.TierStandard)
	seed(t, s.Owner, moving, 50_000)
	seed(t, s.Owner, other, 1_000)

	initial, _, _ := projects(t, s.Owner, moving.ID)
	mc := &client{s: s, auth: testenv.AsTenant(t, moving), want: initial}
	oc := &client{s: s, auth: testenv.AsTenant(t, other), want: map[uuid.UUID]string{}}
	for id, d := range initial {
		_ = d
		mc.ids = append(mc.ids, id)
		if len(mc.ids) == 2000 {
			break
		}
	}
	otherInitial, _, _ := projects(t, s.Owner, other.ID)
	for id, d := range otherInitial {
		oc.want[id] = d
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, c := range []*client{mc, oc} {
		wg.Add(1)
		go func() { defer wg.Done(); c.run(t, stop) }()
	}

	m := &tenantmove.Mover{Owner: s.Owner, Refresh: s.Tenants.Writes, Provisioner: &tenancy.Provisioner{Owner: s.Owner, Migrator: s.Migrator()}, Grace: 300 * time.Millisecond}
	for _, target := range []string{"schema", "rls"} {
		time.Sleep(300 * time.Millisecond) // let the clients write before the move
		res := s.Do(t, "POST", "/admin/v1/tenants/"+moving.ID.String()+"/move", map[string]string{"isolation": target}, testenv.AsAdmin()...)
		if res.Status != http.StatusAccepted {
			t.Fatalf("move to %s: %d %s", target, res.Status, res.Body)
		}
		var acc struct {
			OperationID uuid.UUID `json:"operation_id"`
			State       string
		}
		res.JSON(t, &acc)
		if acc.State != "pending" || acc.OperationID != <-q {
			t.Fatalf("accepted %+v, want a pending operation that was enqueued", acc)
		}
		if err := m.Run(context.Background(), acc.OperationID, false); err != nil {
			t.Fatalf("move to %s: %v", target, err)
		}
		var op tenantmove.Operation
		res = s.Do(t, "GET", "/admin/v1/operations/"+acc.OperationID.String(), nil, testenv.AsAdmin()...)
		res.JSON(t, &op)
		if op.State != tenantmove.Succeeded || op.Progress.Tables["projects"] == nil || !op.Progress.Tables["projects"].Verified ||
			op.Progress.Tables["reports"].Copied != 50_000 {
			t.Fatalf("operation %s", res.Body)
		}
		t.Logf("move to %s: %d rows copied at %.0f rows/s, write pause %.0f ms (switch transaction), %d rows caught up in the switch",
			target, op.Progress.RowsCopied, op.Progress.RowsPerSec, op.Progress.WritePauseMS,
			op.Progress.Tables["projects"].Changed+op.Progress.Tables["reports"].Changed)
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()

	for name, c := range map[string]*client{"moving": mc, "bystander": oc} {
		for _, e := range c.errs {
			t.Errorf("%s client: %s", name, e)
		}
	}
	if oc.n503.Load() != 0 {
		t.Errorf("the other tenant got %d 503s", oc.n503.Load())
	}
	got, reports, iso := projects(t, s.Owner, moving.ID)
	if iso != tenancy.IsolationRLS || reports != 50_000 {
		t.Errorf("after the round trip: isolation %s, %d reports", iso, reports)
	}
	assertSame(t, "moving", got, mc.want)
	gotOther, _, _ := projects(t, s.Owner, other.ID)
	assertSame(t, "bystander", gotOther, oc.want)
	var leftovers int
	if err := s.Owner.QueryRow(`SELECT (SELECT count(*) FROM pg_namespace WHERE nspname = 'tenant_moving') + (SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'tk_move_fence_%')`).Scan(&leftovers); err != nil || leftovers != 0 {
		t.Errorf("old location or fences left behind: %d (%v)", leftovers, err)
	}
	t.Logf("moving tenant: %d writes acknowledged, %d reads, %d writes answered 503, longest client-seen pause %v; bystander: %d writes, %d reads",
		mc.writes.Load(), mc.reads.Load(), mc.n503.Load(), mc.maxPause, oc.writes.Load(), oc.reads.Load())
}

func assertSame(t *testing.T, who string, got, want map[uuid.UUID]string) {
	t.Helper()
	missing, extra, differ := 0, 0, 0
	for id, d := range want {
		g, ok := got[id]
		switch {
		case !ok:
			missing++
		case g != d:
			differ++
		}
	}
	for id := range got {
		if _, ok := want[id]; !ok {
			extra++
		}
	}
	if missing+extra+differ > 0 {
		t.Errorf("%s: %d acknowledged rows missing, %d unacknowledged rows present, %d with another value than acknowledged (of %d)",
			who, missing, extra, differ, len(want))
	}
}
