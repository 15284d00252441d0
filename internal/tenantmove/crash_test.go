package tenantmove_test

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/redis/go-redis/v9"

	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/tenancy/cachestore"
	"github.com/your-org/tenantkit/internal/tenantmove"
	"github.com/your-org/tenantkit/internal/testenv"
	"github.com/your-org/tenantkit/migrations"
)

// TestMoveHelperProcess is the worker of the crash test, run as a separate
// process: it runs one move and SIGKILLs itself at TK_MOVE_KILL_AT. Run
// directly (without TK_MOVE_OPERATION) it does nothing.
func TestMoveHelperProcess(t *testing.T) {
	opID := os.Getenv("TK_MOVE_OPERATION")
	if opID == "" {
		return
	}
	owner, err := sql.Open("pgx", os.Getenv("TK_MOVE_OWNER_URL"))
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close()
	killAt := os.Getenv("TK_MOVE_KILL_AT")
	// Like cmd/worker, the mover publishes the flip through the tenant cache
	// the api processes read, so they follow it.
	opt, err := redis.ParseURL(os.Getenv("TK_MOVE_REDIS_URL"))
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	refresh := cachestore.New(cachestore.Config{Store: &tenancy.PGStore{DB: owner}, Redis: rdb,
		Prefix: os.Getenv("TK_MOVE_PREFIX")})
	m := &tenantmove.Mover{Owner: owner, Refresh: refresh, Grace: 200 * time.Millisecond,
		Provisioner: &tenancy.Provisioner{Owner: owner, Migrator: &tenancy.Migrator{OwnerDSN: os.Getenv("TK_MOVE_OWNER_URL"),
			AppRole: testenv.AppRole, Control: migrations.Control(), Tenant: migrations.Tenant()}},
		At: func(point string) {
			if point == killAt {
				_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
				time.Sleep(time.Minute)
			}
		}}
	if err := m.Run(context.Background(), uuid.MustParse(opID), false); err != nil {
		t.Fatal(err)
	}
}

func runWorker(t *testing.T, s *testenv.Stack, op uuid.UUID, killAt string) error {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestMoveHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "TK_MOVE_OPERATION="+op.String(), "TK_MOVE_OWNER_URL="+s.OwnerURL, "TK_MOVE_KILL_AT="+killAt,
		"TK_MOVE_REDIS_URL="+s.RedisURL, "TK_MOVE_PREFIX="+s.Prefix+":") // the tenant cache's namespace, as testenv wires it
	out, err := cmd.CombinedOutput()
	if killAt != "" {
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("worker was to be killed at %s: %v\n%s", killAt, err, out)
		}
		return nil
	}
	if err != nil {
		t.Fatalf("resumed worker: %v\n%s", err, out)
	}
	return nil
}

// TestMove_WorkerKilledAtAnyPointLeavesOnePlaceAndResumes SIGKILLs the worker
// at each point of a move, in both directions: the tenant is always served
// from exactly the place the registry names, with every row, and rerunning
// the operation completes it.
func TestMove_WorkerKilledAtAnyPointLeavesOnePlaceAndResumes(t *testing.T) {
	t.Parallel()
	q := make(chanQueue, 1)
	s := testenv.NewStack(t, testenv.StackOptions{MoveQueue: q})
	tn := s.Tenant(t, "crashy", tenancy.TierStandard)
	other := s.Tenant(t, "neighbour", tenancy.TierStandard)
	seed(t, s.Owner, tn, 3_000)
	seed(t, s.Owner, other, 500)
	want, _, _ := projects(t, s.Owner, tn.ID)
	otherWant, _, _ := projects(t, s.Owner, other.ID)
	auth := testenv.AsTenant(t, tn)

	check := func(stage string, writable bool) tenancy.Isolation {
		t.Helper()
		got, reports, iso := projects(t, s.Owner, tn.ID)
		assertSame(t, stage, got, want)
		if reports != 3_000 {
			t.Errorf("%s: %d reports where the registry says (%s), want 3000", stage, reports, iso)
		}
		gotOther, _, _ := projects(t, s.Owner, other.ID)
		assertSame(t, stage+": neighbour", gotOther, otherWant)
		if res := s.Do(t, "GET", "/api/v1/projects?limit=5", nil, auth...); res.Status != http.StatusOK {
			t.Errorf("%s: read %d %s", stage, res.Status, res.Body)
		}
		res := s.Do(t, "POST", "/api/v1/projects", map[string]string{"name": "after " + stage}, auth...)
		switch {
		case res.Status == http.StatusCreated:
			var p struct{ ID uuid.UUID }
			res.JSON(t, &p)
			want[p.ID] = ""
		case !writable && res.Status == http.StatusServiceUnavailable && res.Header.Get("Retry-After") != "":
		default:
			t.Errorf("%s: write %d %s", stage, res.Status, res.Body)
		}
		return iso
	}

	for _, c := range []struct {
		to     tenancy.Isolation
		killAt string
		// Between the fence and the flip, writes wait for the resume; so do
		// they between the flip and the refresh of the caches (the resumed
		// worker publishes it) in a process that cached the old placement.
		writable bool
	}{
		{tenancy.IsolationSchema, "copied:projects", true},
		{tenancy.IsolationRLS, "fenced", false},
		{tenancy.IsolationSchema, "switched", false},
		{tenancy.IsolationRLS, "copied", true},
		{tenancy.IsolationSchema, "cleaned-rows", true},
	} {
		stage := "to " + string(c.to) + ", killed at " + c.killAt
		res := s.Do(t, "POST", "/admin/v1/tenants/"+tn.ID.String()+"/move", map[string]string{"isolation": string(c.to)}, testenv.AsAdmin()...)
		if res.Status != http.StatusAccepted {
			t.Fatalf("%s: %d %s", stage, res.Status, res.Body)
		}
		op := <-q
		runWorker(t, s, op, c.killAt)
		iso := check(stage, c.writable)
		if iso != c.to && (c.killAt == "switched" || c.killAt == "cleaned-rows") {
			t.Errorf("%s: registry says %s, want %s (the flip committed)", stage, iso, c.to)
		}
		runWorker(t, s, op, "")
		if iso := check(stage+", resumed", true); iso != c.to {
			t.Fatalf("%s, resumed: isolation %s", stage, iso)
		}
		var state string
		var leftovers int
		if err := s.Owner.QueryRow(`SELECT state FROM tenancy.operations WHERE id = $1`, op).Scan(&state); err != nil || state != "succeeded" {
			t.Fatalf("%s: operation %s %v", stage, state, err)
		}
		if err := s.Owner.QueryRow(`SELECT (SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'tk_move_fence_%') +
			(SELECT count(*) FROM public.projects WHERE tenant_id = $1 AND $2) +
			(SELECT count(*) FROM pg_namespace WHERE nspname = 'tenant_crashy' AND NOT $2)`, tn.ID, c.to == tenancy.IsolationSchema).Scan(&leftovers); err != nil || leftovers != 0 {
			t.Errorf("%s: %d leftovers of the old location or fences (%v)", stage, leftovers, err)
		}
	}
}
