package http_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/your-org/tenantkit/internal/models"
	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/testenv"
)

type reportList struct {
	Items      []models.Report `json:"items"`
	NextCursor *string         `json:"next_cursor"`
}

// TestReports_ListIsNewestFirstPagedAndOwnTenantOnly: GET /api/v1/reports
// (once 405) lists the tenant's reports newest first, pages with the cursor,
// and never shows another tenant's reports, on both tiers.
func TestReports_ListIsNewestFirstPagedAndOwnTenantOnly(t *testing.T) {
	t.Parallel()
	s := testenv.NewStack(t, testenv.StackOptions{})
	tenants := map[tenancy.Tier][2]*tenancy.Tenant{}
	for _, tier := range tiers {
		tenants[tier] = [2]*tenancy.Tenant{s.Tenant(t, "rl-a-"+string(tier), tier), s.Tenant(t, "rl-b-"+string(tier), tier)}
	}
	created := map[*tenancy.Tenant][]string{}
	for _, tier := range tiers {
		for i, tn := range tenants[tier] {
			for j := 0; j < 3+i; j++ {
				res := s.Do(t, "POST", "/api/v1/reports", map[string]string{"kind": "project_summary"}, testenv.AsTenant(t, tn)...)
				if res.Status != http.StatusAccepted {
					t.Fatalf("POST /api/v1/reports: %d %s", res.Status, res.Body)
				}
				var r models.Report
				res.JSON(t, &r)
				created[tn] = append(created[tn], r.ID.String())
			}
		}
	}
	for tn, ids := range created {
		want := slices.Clone(ids)
		slices.Reverse(want) // newest first
		var got []string
		cursor := ""
		for pages := 0; pages < 10; pages++ {
			res := s.Do(t, "GET", "/api/v1/reports?limit=2&cursor="+cursor, nil, testenv.AsTenant(t, tn)...)
			if res.Status != http.StatusOK {
				t.Fatalf("%s GET /api/v1/reports: %d %s", tn.Identifier, res.Status, res.Body)
			}
			var page reportList
			res.JSON(t, &page)
			for _, r := range page.Items {
				got = append(got, r.ID.String())
			}
			if page.NextCursor == nil {
				break
			}
			cursor = *page.NextCursor
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s (%s) lists %v, want its own reports newest first %v", tn.Identifier, tn.Isolation, got, want)
		}
	}
	res := s.Do(t, "GET", "/api/v1/reports?limit=0", nil, testenv.AsTenant(t, tenants[tenancy.TierStandard][0])...)
	if res.Status != http.StatusBadRequest || res.Code() != "validation_failed" {
		t.Errorf("limit=0: %d %s, want 400 validation_failed", res.Status, res.Body)
	}
}
