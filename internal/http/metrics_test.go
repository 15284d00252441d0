package http_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/your-org/tenantkit/internal/models"
	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/testenv"
)

// HTTP metrics are labelled by route pattern: however many tenants and ids
// there are, the series stay bounded, and no tenant id or raw path leaks
// into /metrics.
func TestMetrics_LabelByRoutePatternNeverByTenantOrPath(t *testing.T) {
	t.Parallel()
	s := testenv.NewStack(t, testenv.StackOptions{})
	var leaks []string
	for _, tier := range []tenancy.Tier{tenancy.TierPremium, tenancy.TierStandard} {
		tn := s.Tenant(t, "metrics-"+string(tier), tier)
		res := s.Do(t, "POST", "/api/v1/projects", map[string]string{"name": "m"}, testenv.AsTenant(t, tn)...)
		var p models.Project
		res.JSON(t, &p)
		if res := s.Do(t, "GET", "/api/v1/projects/"+p.ID.String(), nil, testenv.AsTenant(t, tn)...); res.Status != http.StatusOK {
			t.Fatalf("get: %d %s", res.Status, res.Body)
		}
		leaks = append(leaks, tn.ID.String(), tn.Identifier, p.ID.String())
	}
	s.Do(t, "GET", "/no/such/route/0123", nil) // unresolved (401) before routing

	res := s.Do(t, "GET", "/metrics", nil)
	if res.Status != http.StatusOK {
		t.Fatalf("/metrics: %d", res.Status)
	}
	body := string(res.Body)
	for _, want := range []string{
		`http_requests_total{method="GET",route="/api/v1/projects/:id",status="200"} 2`,
		`http_requests_total{method="POST",route="/api/v1/projects",status="201"} 2`,
		`http_requests_total{method="GET",route="unmatched",status="401"} 1`,
		`http_request_duration_seconds_count{method="GET",route="/api/v1/projects/:id"} 2`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	for _, leak := range append(leaks, "/no/such/route") {
		if strings.Contains(body, leak) {
			t.Errorf("/metrics contains %q: labels must be route patterns, never tenants, ids or raw paths", leak)
		}
	}
}
