package http_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/your-org/tenantkit/internal/models"
	"github.com/your-org/tenantkit/internal/page"
	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/testenv"
)

// A cursor is only a position: one forged to name another tenant's row (its
// id and created_at, well-formed) pages through the caller's own rows and
// never reaches the other tenant's, whichever tiers the two are on.
func TestProjects_ForgedCursorNamingAnotherTenantsRowStaysInItsTenant(t *testing.T) {
	t.Parallel()
	s := testenv.NewStack(t, testenv.StackOptions{})
	create := func(tn *tenancy.Tenant, n int) []models.Project {
		var out []models.Project
		for i := 0; i < n; i++ {
			res := s.Do(t, "POST", "/api/v1/projects", map[string]string{"name": tn.Identifier}, testenv.AsTenant(t, tn)...)
			if res.Status != http.StatusCreated {
				t.Fatalf("create: %d %s", res.Status, res.Body)
			}
			var p models.Project
			res.JSON(t, &p)
			out = append(out, p)
		}
		return out
	}
	victims := map[tenancy.Tier]*tenancy.Tenant{
		tenancy.TierStandard: s.Tenant(t, "cursor-victim-rls", tenancy.TierStandard),
		tenancy.TierPremium:  s.Tenant(t, "cursor-victim-schema", tenancy.TierPremium),
	}
	foreign := map[string]bool{}
	var forged []page.Cursor
	for _, v := range victims {
		for _, p := range create(v, 3) {
			foreign[p.ID.String()] = true
			// The victim's exact position, and just after it (so the victim's own row would be next).
			forged = append(forged, page.Cursor{CreatedAt: p.CreatedAt, ID: p.ID},
				page.Cursor{CreatedAt: p.CreatedAt.Add(time.Microsecond), ID: p.ID})
		}
	}
	// A position after everything: a leak would show every tenant's rows.
	forged = append(forged, page.Cursor{CreatedAt: time.Now().Add(time.Hour)})

	for _, tier := range tiers {
		caller := s.Tenant(t, "cursor-caller-"+string(tier), tier)
		own := map[string]bool{}
		for _, p := range create(caller, 2) {
			own[p.ID.String()] = true
		}
		for _, c := range forged {
			res := s.Do(t, "GET", "/api/v1/projects?limit=100&cursor="+url.QueryEscape(c.Encode()), nil, testenv.AsTenant(t, caller)...)
			if res.Status != http.StatusOK {
				t.Errorf("%s caller, forged cursor %v: %d %s, want 200 with its own rows", tier, c, res.Status, res.Body)
				continue
			}
			var list struct{ Items []models.Project }
			res.JSON(t, &list)
			for _, p := range list.Items {
				if !own[p.ID.String()] {
					t.Errorf("%s caller, forged cursor %v: got project %s (%q) of another tenant (foreign: %v)", tier, c, p.ID, p.Name, foreign[p.ID.String()])
				}
			}
			if c.ID.String() == "00000000-0000-0000-0000-000000000000" && len(list.Items) != len(own) {
				t.Errorf("%s caller, cursor after everything: %d items, want its own %d", tier, len(list.Items), len(own))
			}
		}
	}
}
