package http_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/your-org/tenantkit/internal/models"
	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/testenv"
)

var tiers = []tenancy.Tier{tenancy.TierPremium, tenancy.TierStandard}

func TestProjects_OtherTenantGets404(t *testing.T) {
	t.Parallel()
	s := testenv.NewStack(t, testenv.StackOptions{})
	for _, pair := range [][2]tenancy.Tier{
		{tenancy.TierPremium, tenancy.TierStandard}, {tenancy.TierStandard, tenancy.TierPremium},
		{tenancy.TierStandard, tenancy.TierStandard}, {tenancy.TierPremium, tenancy.TierPremium},
	} {
		a := s.Tenant(t, "a-"+string(pair[0])+"-"+string(pair[1]), pair[0])
		b := s.Tenant(t, "b-"+string(pair[0])+"-"+string(pair[1]), pair[1])
		res := s.Do(t, "POST", "/api/v1/projects", map[string]string{"name": "secret plan", "description": "eyes only"}, testenv.AsTenant(t, a)...)
		if res.Status != http.StatusCreated {
			t.Fatalf("create: %d %s", res.Status, res.Body)
		}
		var p models.Project
		res.JSON(t, &p)
		before := s.Do(t, "GET", "/api/v1/projects/"+p.ID.String(), nil, testenv.AsTenant(t, a)...)

		for _, m := range []string{"GET", "PATCH", "DELETE"} {
			var body any
			if m == "PATCH" {
				body = map[string]string{"name": "stolen", "description": "stolen"}
			}
			res := s.Do(t, m, "/api/v1/projects/"+p.ID.String(), body, testenv.AsTenant(t, b)...)
			if res.Status != http.StatusNotFound || res.Code() != "not_found" {
				t.Errorf("%v %s by other tenant: %d %s, want 404 not_found", pair, m, res.Status, res.Body)
			}
			// Indistinguishable from an id that exists nowhere.
			absent := s.Do(t, m, "/api/v1/projects/"+strings.Replace(p.ID.String(), p.ID.String()[:8], "00000000", 1), body, testenv.AsTenant(t, b)...)
			if projNormalize(absent.Body) != projNormalize(res.Body) {
				t.Errorf("%v %s: other tenant's id %s differs from an absent id %s", pair, m, res.Body, absent.Body)
			}
		}
		after := s.Do(t, "GET", "/api/v1/projects/"+p.ID.String(), nil, testenv.AsTenant(t, a)...)
		if after.Status != http.StatusOK || string(after.Body) != string(before.Body) {
			t.Errorf("%v owner's project changed: %s -> %d %s", pair, before.Body, after.Status, after.Body)
		}
		if list := listProjects(t, s, b, ""); len(list.Items) != 0 {
			t.Errorf("%v other tenant lists %d projects", pair, len(list.Items))
		}
	}
}

type projectList struct {
	Items      []models.Project `json:"items"`
	NextCursor *string          `json:"next_cursor"`
}

func listProjects(t *testing.T, s *testenv.Stack, tn *tenancy.Tenant, query string) projectList {
	t.Helper()
	res := s.Do(t, "GET", "/api/v1/projects"+query, nil, testenv.AsTenant(t, tn)...)
	if res.Status != http.StatusOK {
		t.Fatalf("list %s: %d %s", query, res.Status, res.Body)
	}
	var l projectList
	res.JSON(t, &l)
	return l
}

func TestProjects_CreateGetPatchDelete(t *testing.T) {
	t.Parallel()
	s := testenv.NewStack(t, testenv.StackOptions{})
	for _, tier := range tiers {
		t.Run(string(tier), func(t *testing.T) {
			tn := s.Tenant(t, "crud-"+string(tier), tier)
			as := testenv.AsTenant(t, tn)
			res := s.Do(t, "POST", "/api/v1/projects", map[string]string{"name": "Apollo", "description": "moon"}, as...)
			if res.Status != http.StatusCreated {
				t.Fatalf("create: %d %s", res.Status, res.Body)
			}
			var raw map[string]any
			res.JSON(t, &raw)
			keys := make([]string, 0, len(raw))
			for k := range raw {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			if want := []string{"created_at", "description", "id", "name", "updated_at"}; !slices.Equal(keys, want) {
				t.Errorf("project fields %v, want %v", keys, want)
			}
			var created models.Project
			res.JSON(t, &created)
			if created.Name != "Apollo" || created.Description != "moon" || created.CreatedAt.IsZero() || !created.UpdatedAt.Equal(created.CreatedAt) {
				t.Errorf("created %+v", created)
			}
			path := "/api/v1/projects/" + created.ID.String()

			var got models.Project
			res = s.Do(t, "GET", path, nil, as...)
			res.JSON(t, &got)
			if res.Status != http.StatusOK || got.ID != created.ID || got.Name != "Apollo" || !got.CreatedAt.Equal(created.CreatedAt) {
				t.Errorf("get: %d %s", res.Status, res.Body)
			}

			// Without a description the field defaults to "".
			res = s.Do(t, "POST", "/api/v1/projects", map[string]string{"name": "Gemini"}, as...)
			var second models.Project
			res.JSON(t, &second)
			if res.Status != http.StatusCreated || second.Description != "" {
				t.Errorf("create without description: %d %s", res.Status, res.Body)
			}

			for _, step := range []struct {
				patch    map[string]string
				name     string
				desc     string
				wantCode int
			}{
				{map[string]string{"name": "Apollo 11"}, "Apollo 11", "moon", http.StatusOK},
				{map[string]string{"description": ""}, "Apollo 11", "", http.StatusOK},
				{map[string]string{"name": "Apollo 13", "description": "return"}, "Apollo 13", "return", http.StatusOK},
				{map[string]string{}, "Apollo 13", "return", http.StatusOK},
				{map[string]string{"name": ""}, "Apollo 13", "return", http.StatusBadRequest},
				{map[string]string{"name": strings.Repeat("x", 201)}, "Apollo 13", "return", http.StatusBadRequest},
			} {
				res := s.Do(t, "PATCH", path, step.patch, as...)
				if res.Status != step.wantCode {
					t.Errorf("patch %v: %d %s, want %d", step.patch, res.Status, res.Body, step.wantCode)
				}
				res = s.Do(t, "GET", path, nil, as...)
				var p models.Project
				res.JSON(t, &p)
				if p.Name != step.name || p.Description != step.desc || !p.CreatedAt.Equal(created.CreatedAt) || p.UpdatedAt.Before(created.UpdatedAt) {
					t.Errorf("after patch %v: %+v", step.patch, p)
				}
			}

			res = s.Do(t, "DELETE", path, nil, as...)
			if res.Status != http.StatusNoContent || len(res.Body) != 0 {
				t.Errorf("delete: %d %q", res.Status, res.Body)
			}
			for _, m := range []string{"GET", "PATCH", "DELETE"} {
				var body any
				if m == "PATCH" {
					body = map[string]string{"name": "ghost"}
				}
				if res := s.Do(t, m, path, body, as...); res.Status != http.StatusNotFound || res.Code() != "not_found" {
					t.Errorf("%s after delete: %d %s", m, res.Status, res.Body)
				}
			}
			if res := s.Do(t, "GET", "/api/v1/projects/not-a-uuid", nil, as...); res.Status != http.StatusNotFound || res.Code() != "not_found" {
				t.Errorf("malformed id: %d %s", res.Status, res.Body)
			}
			l := listProjects(t, s, tn, "")
			if len(l.Items) != 1 || l.Items[0].ID != second.ID {
				t.Errorf("after delete the list is %+v", l.Items)
			}
		})
	}
}

func TestProjects_ListIsNewestFirstWithCursorPaging(t *testing.T) {
	t.Parallel()
	s := testenv.NewStack(t, testenv.StackOptions{})
	for _, tier := range tiers {
		t.Run(string(tier), func(t *testing.T) {
			tn := s.Tenant(t, "paging-"+string(tier), tier)
			as := testenv.AsTenant(t, tn)
			res := s.Do(t, "GET", "/api/v1/projects", nil, as...)
			if body := strings.TrimSpace(string(res.Body)); res.Status != http.StatusOK || body != `{"items":[],"next_cursor":null}` {
				t.Errorf("empty list: %d %q", res.Status, res.Body)
			}
			var created []string // oldest first
			for i := 0; i < 25; i++ {
				res := s.Do(t, "POST", "/api/v1/projects", map[string]string{"name": fmt.Sprintf("p%02d", i)}, as...)
				var p models.Project
				res.JSON(t, &p)
				created = append(created, p.ID.String())
			}
			newestFirst := slices.Clone(created)
			slices.Reverse(newestFirst)
			ids := func(ps []models.Project) []string {
				out := make([]string, len(ps))
				for i, p := range ps {
					out[i] = p.ID.String()
				}
				return out
			}

			def := listProjects(t, s, tn, "")
			if !slices.Equal(ids(def.Items), newestFirst[:20]) || def.NextCursor == nil {
				t.Errorf("default page: %v next %v, want the 20 newest", ids(def.Items), def.NextCursor)
			}
			for i := 1; i < len(def.Items); i++ {
				if def.Items[i].CreatedAt.After(def.Items[i-1].CreatedAt) {
					t.Errorf("not newest first at %d", i)
				}
			}
			for _, limit := range []int{1, 7, 10, 24, 25, 100} {
				var got []string
				cursor, pages := "", 0
				for {
					q := fmt.Sprintf("?limit=%d", limit)
					if cursor != "" {
						q += "&cursor=" + cursor
					}
					l := listProjects(t, s, tn, q)
					pages++
					if len(l.Items) > limit {
						t.Fatalf("limit %d: page of %d", limit, len(l.Items))
					}
					got = append(got, ids(l.Items)...)
					if l.NextCursor == nil {
						break
					}
					if len(l.Items) != limit || pages > 30 {
						t.Fatalf("limit %d: short page %d with a next cursor", limit, len(l.Items))
					}
					cursor = *l.NextCursor
				}
				if !slices.Equal(got, newestFirst) {
					t.Errorf("limit %d: paged %v, want %v", limit, got, newestFirst)
				}
				if want := (25 + limit - 1) / limit; pages != want {
					t.Errorf("limit %d: %d pages, want %d", limit, pages, want)
				}
			}
			// A cursor stays valid while rows before it are deleted.
			first := listProjects(t, s, tn, "?limit=5")
			for _, id := range newestFirst[:5] {
				s.Do(t, "DELETE", "/api/v1/projects/"+id, nil, as...)
			}
			next := listProjects(t, s, tn, "?limit=5&cursor="+*first.NextCursor)
			if !slices.Equal(ids(next.Items), newestFirst[5:10]) {
				t.Errorf("after deletes the cursor page is %v, want %v", ids(next.Items), newestFirst[5:10])
			}
		})
	}
}

func TestProjects_BadLimitOrCursorIs400(t *testing.T) {
	t.Parallel()
	s := testenv.NewStack(t, testenv.StackOptions{})
	tn := s.Tenant(t, "bad-paging", tenancy.TierStandard)
	for _, q := range []string{"limit=0", "limit=101", "limit=-1", "limit=abc", "limit=1.5", "limit=%00",
		"cursor=garbage", "cursor=" + "MjAyNC0wMS0wMVQwMDowMDowMFp8bm90LWEtdXVpZA", "cursor=%27%3B--", "cursor=" + strings.Repeat("A", 400)} {
		res := s.Do(t, "GET", "/api/v1/projects?"+q, nil, testenv.AsTenant(t, tn)...)
		if res.Status != http.StatusBadRequest || res.Code() != "validation_failed" {
			t.Errorf("?%s: %d %s, want 400 validation_failed", q, res.Status, res.Body)
		}
	}
}

var (
	uuidRE      = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	timestampRE = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)`)
	cursorRE    = regexp.MustCompile(`"next_cursor":"[A-Za-z0-9_-]+"`)
)

// projNormalize replaces what must differ between two tenants (ids, times,
// cursors that encode them) with placeholders numbered by first appearance.
func projNormalize(b []byte) string {
	s := cursorRE.ReplaceAllString(string(b), `"next_cursor":"<cursor>"`)
	s = timestampRE.ReplaceAllString(s, "<time>")
	seen := map[string]string{}
	return uuidRE.ReplaceAllStringFunc(s, func(id string) string {
		if _, ok := seen[id]; !ok {
			seen[id] = fmt.Sprintf("<id%d>", len(seen))
		}
		return seen[id]
	})
}

// Invariant 8: premium (schema) and standard (RLS) tenants get byte-identical
// API behaviour; only ids and times differ.
func TestProjects_PremiumAndStandardBehaveIdentically(t *testing.T) {
	t.Parallel()
	s := testenv.NewStack(t, testenv.StackOptions{})
	type exchange struct {
		req, status, contentType, body string
		headers                        []string
	}
	script := func(tn *tenancy.Tenant) []exchange {
		as := testenv.AsTenant(t, tn)
		var out []exchange
		var ids []string
		cursor := ""
		do := func(method, path string, body any) {
			path = strings.ReplaceAll(path, "{cursor}", cursor)
			for i, id := range ids {
				path = strings.ReplaceAll(path, fmt.Sprintf("{id%d}", i), id)
			}
			res := s.Do(t, method, path, body, as...)
			var p struct {
				ID         string  `json:"id"`
				NextCursor *string `json:"next_cursor"`
			}
			_ = json.Unmarshal(res.Body, &p)
			if method == "POST" && res.Status == http.StatusCreated {
				ids = append(ids, p.ID)
			}
			if p.NextCursor != nil {
				cursor = *p.NextCursor
			}
			var hs []string
			for k := range res.Header {
				switch k {
				case "Date", "Content-Length", "X-Request-Id":
				default:
					hs = append(hs, k+": "+strings.Join(res.Header[k], ","))
				}
			}
			slices.Sort(hs)
			out = append(out, exchange{req: method + " " + projNormalize([]byte(path)), status: fmt.Sprint(res.Status),
				contentType: res.Header.Get("Content-Type"), body: projNormalize(res.Body), headers: hs})
		}
		do("GET", "/api/v1/projects", nil)
		do("POST", "/api/v1/projects", map[string]string{"name": "alpha", "description": "first"})
		do("POST", "/api/v1/projects", map[string]string{"name": "beta"})
		do("POST", "/api/v1/projects", map[string]string{"name": "gamma", "description": strings.Repeat("ü", 100)})
		do("GET", "/api/v1/projects", nil)
		do("GET", "/api/v1/projects?limit=2", nil)
		do("GET", "/api/v1/projects?limit=2&cursor={cursor}", nil)
		do("GET", "/api/v1/projects/{id0}", nil)
		do("PATCH", "/api/v1/projects/{id1}", map[string]string{"description": "second"})
		do("PATCH", "/api/v1/projects/{id1}", map[string]any{"name": ""})
		do("PATCH", "/api/v1/projects/{id1}", []byte(`{"name": `))
		do("DELETE", "/api/v1/projects/{id2}", nil)
		do("DELETE", "/api/v1/projects/{id2}", nil)
		do("GET", "/api/v1/projects/{id2}", nil)
		do("GET", "/api/v1/projects/00000000-0000-4000-8000-000000000000", nil)
		do("GET", "/api/v1/projects/nope", nil)
		do("POST", "/api/v1/projects", map[string]any{"name": 42})
		do("POST", "/api/v1/projects", map[string]any{})
		do("GET", "/api/v1/projects?limit=500", nil)
		do("GET", "/api/v1/tenant", nil)
		do("GET", "/api/v1/projects", nil)
		return out
	}
	prem := script(s.Tenant(t, "same-tenant", tenancy.TierPremium))
	std := script(s.Tenant(t, "same-tenant-2", tenancy.TierStandard))
	for i := range prem {
		p, q := prem[i], std[i]
		if p.req == "GET /api/v1/tenant" {
			// The one deliberate difference: where the data lives, and the tenant's own fields.
			continue
		}
		if p.status != q.status || p.contentType != q.contentType || p.body != q.body || !slices.Equal(p.headers, q.headers) {
			t.Errorf("%s differs:\n premium  %s %s %v %s\n standard %s %s %v %s", p.req, p.status, p.contentType, p.headers, p.body, q.status, q.contentType, q.headers, q.body)
		}
	}
}

// TestProjects_CRUDOnBothTiersAndOtherTenantGets404 runs the check every
// generated resource runs (testenv.CheckCRUD) on the kit's own resource.
func TestProjects_CRUDOnBothTiersAndOtherTenantGets404(t *testing.T) {
	t.Parallel()
	testenv.CheckCRUD(t, testenv.NewStack(t, testenv.StackOptions{}), testenv.CRUDCase{
		Path:   "/api/v1/projects",
		Create: map[string]any{"name": "plan", "description": "d"},
		Patch:  map[string]any{"name": "renamed"},
	})
}
