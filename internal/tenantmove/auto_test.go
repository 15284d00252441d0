package tenantmove_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/tenantmove"
	"github.com/your-org/tenantkit/internal/testenv"
)

func patch(t *testing.T, s *testenv.Stack, id uuid.UUID, body map[string]any) (tenancy.Tenant, string) {
	t.Helper()
	res := s.Do(t, "PATCH", "/admin/v1/tenants/"+id.String(), body, testenv.AsAdmin()...)
	if res.Status != http.StatusOK {
		t.Fatalf("patch %v: %d %s", body, res.Status, res.Body)
	}
	var tn tenancy.Tenant
	res.JSON(t, &tn)
	return tn, res.Header.Get("Operation-Id")
}

// TestAutoMove_PlanChangeMovesTheTenantAndPremiumIDsStayPut: with
// TENANCY_AUTO_MOVE and TENANCY_PREMIUM_RULE=plan=enterprise, a plan change
// makes the tenant premium and schedules its move to a schema, and back; a
// tenant listed in PREMIUM_TENANT_IDS keeps its schema whatever its tier.
func TestAutoMove_PlanChangeMovesTheTenantAndPremiumIDsStayPut(t *testing.T) {
	t.Parallel()
	q := make(chanQueue, 4)
	pinned := uuid.New()
	placement := tenancy.Placement{Strategy: tenancy.Hybrid, PremiumIDs: map[uuid.UUID]bool{pinned: true}}
	s := testenv.NewStack(t, testenv.StackOptions{MoveQueue: q, AutoMove: true, Placement: &placement,
		TierRule: &tenancy.TierRule{Key: "plan", Value: "enterprise"}})
	m := &tenantmove.Mover{Owner: s.Owner, Refresh: s.Tenants.Writes, Provisioner: &tenancy.Provisioner{Owner: s.Owner, Migrator: s.Migrator()}, Grace: time.Millisecond}

	res := s.Do(t, "POST", "/admin/v1/tenants", map[string]any{"identifier": "upgrader", "name": "U", "metadata": map[string]any{"plan": "free"}}, testenv.AsAdmin()...)
	var tn tenancy.Tenant
	res.JSON(t, &tn)
	seed(t, s.Owner, &tn, 100)
	for _, step := range []struct {
		plan string
		tier tenancy.Tier
		iso  tenancy.Isolation
	}{{"enterprise", tenancy.TierPremium, tenancy.IsolationSchema}, {"team", tenancy.TierStandard, tenancy.IsolationRLS}} {
		got, opID := patch(t, s, tn.ID, map[string]any{"metadata": map[string]any{"plan": step.plan}})
		if got.Tier != step.tier || opID == "" {
			t.Fatalf("plan %s: tier %s, operation %q; want %s and a scheduled move", step.plan, got.Tier, opID, step.tier)
		}
		id := <-q
		if id.String() != opID {
			t.Fatalf("enqueued %s, header says %s", id, opID)
		}
		if err := m.Run(context.Background(), id, false); err != nil {
			t.Fatal(err)
		}
		rows, reports, iso := projects(t, s.Owner, tn.ID)
		if iso != step.iso || len(rows) != 100 || reports != 100 {
			t.Fatalf("plan %s: isolation %s with %d projects, %d reports; want %s with 100 each", step.plan, iso, len(rows), reports, step.iso)
		}
	}
	// Unrelated metadata changes neither tier nor placement.
	if got, opID := patch(t, s, tn.ID, map[string]any{"metadata": map[string]any{"color": "blue"}}); got.Tier != tenancy.TierStandard || opID != "" {
		t.Errorf("unrelated metadata: tier %s, operation %q", got.Tier, opID)
	}

	res = s.Do(t, "POST", "/admin/v1/tenants", map[string]any{"id": pinned, "identifier": "pinned", "name": "P", "tier": "standard"}, testenv.AsAdmin()...)
	res.JSON(t, &tn)
	if tn.Isolation != tenancy.IsolationSchema {
		t.Fatalf("PREMIUM_TENANT_IDS tenant placed %s", tn.Isolation)
	}
	if got, opID := patch(t, s, pinned, map[string]any{"tier": "standard", "metadata": map[string]any{"plan": "free"}}); got.Tier != tenancy.TierStandard || opID != "" {
		t.Errorf("PREMIUM_TENANT_IDS tenant: tier %s, operation %q; want standard and no move", got.Tier, opID)
	}
	select {
	case id := <-q:
		t.Errorf("unexpected move %s enqueued", id)
	default:
	}
}

// Without TENANCY_AUTO_MOVE a tier change changes the tier only.
func TestAutoMove_OffChangesOnlyTheTier(t *testing.T) {
	t.Parallel()
	q := make(chanQueue, 1)
	s := testenv.NewStack(t, testenv.StackOptions{MoveQueue: q})
	tn := s.Tenant(t, "stays", tenancy.TierStandard)
	if got, opID := patch(t, s, tn.ID, map[string]any{"tier": "premium"}); got.Tier != tenancy.TierPremium || got.Isolation != tenancy.IsolationRLS || opID != "" {
		t.Errorf("tier change without auto move: %+v, operation %q", got, opID)
	}
	if res := s.Do(t, "PATCH", "/admin/v1/tenants/"+tn.ID.String(), map[string]any{"tier": "gold"}, testenv.AsAdmin()...); res.Status != http.StatusBadRequest {
		t.Errorf("tier gold: %d, want 400", res.Status)
	}
	for _, body := range []map[string]any{{"isolation": "database"}, {"isolation": "schema", "cell": "eu2"}, {"isolation": "rls"}} {
		res := s.Do(t, "POST", "/admin/v1/tenants/"+tn.ID.String()+"/move", body, testenv.AsAdmin()...)
		want := http.StatusBadRequest
		if body["isolation"] == "rls" && body["cell"] == nil {
			want = http.StatusConflict // already there
		}
		if res.Status != want {
			t.Errorf("move %v: %d %s, want %d", body, res.Status, res.Body, want)
		}
	}
	if res := s.Do(t, "GET", "/admin/v1/operations/"+uuid.NewString(), nil, testenv.AsAdmin()...); res.Status != http.StatusNotFound {
		t.Errorf("unknown operation: %d, want 404", res.Status)
	}
}
