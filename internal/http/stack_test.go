package http_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/tenancy/cachestore"
	"github.com/your-org/tenantkit/internal/testenv"
)

// TestStack_IsWiredAsCmdAPI: the suite's HTTP evidence comes from the wiring
// cmd/api runs — tenants resolved through the cached store (whose lookups
// show on /metrics) and a suspension through the admin API enforced at once.
func TestStack_IsWiredAsCmdAPI(t *testing.T) {
	t.Parallel()
	s := testenv.NewStack(t, testenv.StackOptions{})
	if _, ok := s.Tenants.Lookup.(*cachestore.Store); !ok {
		t.Fatalf("the stack resolves through %T, cmd/api through *cachestore.Store", s.Tenants.Lookup)
	}
	tn := s.Tenant(t, "wired", tenancy.TierStandard)
	for i := 0; i < 2; i++ {
		if res := s.Do(t, "GET", "/api/v1/tenant", nil, testenv.AsTenant(t, tn)...); res.Status != http.StatusOK {
			t.Fatalf("GET /api/v1/tenant: %d %s", res.Status, res.Body)
		}
	}
	metrics := string(s.Do(t, "GET", "/metrics", nil).Body)
	if !strings.Contains(metrics, `tenantkit_cache_hits_total{cache="tenants"`) {
		t.Errorf("/metrics shows no tenant-cache hits after two requests:\n%s", metrics)
	}
	if res := s.Do(t, "PATCH", "/admin/v1/tenants/"+tn.ID.String(), map[string]string{"status": "suspended"}, testenv.AsAdmin()...); res.Status != http.StatusOK {
		t.Fatalf("suspend: %d %s", res.Status, res.Body)
	}
	if res := s.Do(t, "GET", "/api/v1/tenant", nil, testenv.AsTenant(t, tn)...); res.Status != http.StatusForbidden || res.Code() != "tenant_suspended" {
		t.Errorf("after suspension through the cached store: %d %s, want 403 tenant_suspended", res.Status, res.Body)
	}
}
