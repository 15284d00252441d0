package testenv

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/your-org/tenantkit/internal/tenancy"
)

// CRUDCase describes a CRUD resource for CheckCRUD.
type CRUDCase struct {
	Path   string         // /api/v1/<plural>
	Create map[string]any // a valid POST body naming every required field
	Patch  map[string]any // a valid PATCH body
}

// CheckCRUD drives a tenant-owned CRUD resource through the stack for a
// premium and a standard tenant: create (201, and 400 validation_failed
// without the fields), get, list newest first with cursor paging, patch and
// delete; another tenant of either tier gets 404 not_found for every id and
// lists nothing. Generated resource tests call it.
func CheckCRUD(t *testing.T, s *Stack, c CRUDCase) {
	t.Helper()
	type row = map[string]any
	decode := func(res Response) row {
		t.Helper()
		var r row
		res.JSON(t, &r)
		return r
	}
	for _, tier := range []tenancy.Tier{tenancy.TierPremium, tenancy.TierStandard} {
		owner := s.Tenant(t, "crud-a-"+string(tier), tier)
		other := s.Tenant(t, "crud-b-"+string(tier), tier)
		as := AsTenant(t, owner)
		if res := s.Do(t, "POST", c.Path, map[string]any{}, as...); res.Status != http.StatusBadRequest || res.Code() != "validation_failed" {
			t.Errorf("%s: POST %s {}: %d %s, want 400 validation_failed", tier, c.Path, res.Status, res.Body)
		}
		var ids []string
		for i := 0; i < 3; i++ {
			res := s.Do(t, "POST", c.Path, c.Create, as...)
			if res.Status != http.StatusCreated {
				t.Fatalf("%s: POST %s: %d %s", tier, c.Path, res.Status, res.Body)
			}
			r := decode(res)
			for k, v := range c.Create {
				if fmt.Sprint(r[k]) != fmt.Sprint(jsonRoundTrip(t, v)) {
					t.Errorf("%s: created %s = %v, want %v", tier, k, r[k], v)
				}
			}
			ids = append(ids, fmt.Sprint(r["id"]))
		}
		// Newest first, one row per page.
		var listed []string
		cursor := ""
		for pages := 0; pages < 10; pages++ {
			res := s.Do(t, "GET", c.Path+"?limit=1&cursor="+cursor, nil, as...)
			var page struct {
				Items      []row   `json:"items"`
				NextCursor *string `json:"next_cursor"`
			}
			res.JSON(t, &page)
			for _, r := range page.Items {
				listed = append(listed, fmt.Sprint(r["id"]))
			}
			if page.NextCursor == nil {
				break
			}
			cursor = *page.NextCursor
		}
		want := slices.Clone(ids)
		slices.Reverse(want)
		if !slices.Equal(listed, want) {
			t.Errorf("%s: list %v, want newest first %v", tier, listed, want)
		}
		id := ids[0]
		before := s.Do(t, "GET", c.Path+"/"+id, nil, as...)
		if before.Status != http.StatusOK {
			t.Fatalf("%s: GET %s/%s: %d %s", tier, c.Path, id, before.Status, before.Body)
		}
		for _, intruder := range []*tenancy.Tenant{other, s.Tenant(t, "crud-c-"+string(tier), otherTier(tier))} {
			for _, m := range []string{"GET", "PATCH", "DELETE"} {
				var body any
				if m == "PATCH" {
					body = c.Patch
				}
				if res := s.Do(t, m, c.Path+"/"+id, body, AsTenant(t, intruder)...); res.Status != http.StatusNotFound || res.Code() != "not_found" {
					t.Errorf("%s: %s by %s tenant: %d %s, want 404 not_found", tier, m, intruder.Isolation, res.Status, res.Body)
				}
			}
			res := s.Do(t, "GET", c.Path, nil, AsTenant(t, intruder)...)
			if r := decode(res); res.Status != http.StatusOK || len(r["items"].([]any)) != 0 {
				t.Errorf("%s: another tenant lists %s", tier, res.Body)
			}
		}
		if after := s.Do(t, "GET", c.Path+"/"+id, nil, as...); string(after.Body) != string(before.Body) {
			t.Errorf("%s: the owner's row changed under others' attempts: %s -> %s", tier, before.Body, after.Body)
		}
		res := s.Do(t, "PATCH", c.Path+"/"+id, c.Patch, as...)
		if res.Status != http.StatusOK {
			t.Fatalf("%s: PATCH: %d %s", tier, res.Status, res.Body)
		}
		r := decode(res)
		for k, v := range c.Patch {
			if fmt.Sprint(r[k]) != fmt.Sprint(jsonRoundTrip(t, v)) {
				t.Errorf("%s: patched %s = %v, want %v", tier, k, r[k], v)
			}
		}
		if res := s.Do(t, "DELETE", c.Path+"/"+id, nil, as...); res.Status != http.StatusNoContent {
			t.Errorf("%s: DELETE: %d %s", tier, res.Status, res.Body)
		}
		if res := s.Do(t, "GET", c.Path+"/"+id, nil, as...); res.Status != http.StatusNotFound {
			t.Errorf("%s: GET after DELETE: %d %s", tier, res.Status, res.Body)
		}
	}
}

func otherTier(t tenancy.Tier) tenancy.Tier {
	if t == tenancy.TierPremium {
		return tenancy.TierStandard
	}
	return tenancy.TierPremium
}

// jsonRoundTrip is v as it reads back from JSON (numbers become float64).
func jsonRoundTrip(t *testing.T, v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	_ = json.Unmarshal(b, &out)
	return out
}
