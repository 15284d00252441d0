package http_test

import (
	"net/http"
	"testing"

	"github.com/your-org/tenantkit/internal/models"
	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/testenv"
)

func TestProjects_OtherTenantGets404(t *testing.T) {
	t.Parallel()
	s := testenv.NewStack(t, testenv.StackOptions{})
	for _, tiers := range [][2]tenancy.Tier{{tenancy.TierPremium, tenancy.TierStandard}, {tenancy.TierStandard, tenancy.TierPremium}, {tenancy.TierStandard, tenancy.TierStandard}} {
		a := s.Tenant(t, "a-"+string(tiers[0])+"-"+string(tiers[1]), tiers[0])
		b := s.Tenant(t, "b-"+string(tiers[0])+"-"+string(tiers[1]), tiers[1])
		var p models.Project
		res := s.Do(t, "POST", "/api/v1/projects", map[string]string{"name": "secret plan"}, testenv.AsTenant(t, a)...)
		if res.Status != http.StatusCreated {
			t.Fatalf("create: %d %s", res.Status, res.Body)
		}
		res.JSON(t, &p)
		for _, m := range []string{"GET", "PATCH", "DELETE"} {
			var body any
			if m == "PATCH" {
				body = map[string]string{"name": "stolen"}
			}
			res := s.Do(t, m, "/api/v1/projects/"+p.ID.String(), body, testenv.AsTenant(t, b)...)
			if res.Status != http.StatusNotFound || res.Code() != "not_found" {
				t.Errorf("%v %s by other tenant: %d %s, want 404 not_found", tiers, m, res.Status, res.Body)
			}
		}
		var got models.Project
		res = s.Do(t, "GET", "/api/v1/projects/"+p.ID.String(), nil, testenv.AsTenant(t, a)...)
		res.JSON(t, &got)
		if res.Status != http.StatusOK || got.Name != "secret plan" {
			t.Errorf("%v owner's project changed: %d %s", tiers, res.Status, res.Body)
		}
	}
}
