package http_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/your-org/tenantkit/internal/apperr"
	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/testenv"
)

// adminCreate creates a tenant over the admin API and returns it.
func adminCreate(t testing.TB, s *testenv.Stack, body map[string]any) tenancy.Tenant {
	t.Helper()
	res := s.Do(t, "POST", "/admin/v1/tenants", body, testenv.AsAdmin()...)
	if res.Status != http.StatusCreated {
		t.Fatalf("create %v: %d %s", body, res.Status, res.Body)
	}
	var tn tenancy.Tenant
	res.JSON(t, &tn)
	return tn
}

func schemaExists(t testing.TB, s *testenv.Stack, name string) bool {
	t.Helper()
	var ok bool
	if err := s.Owner.QueryRow(`SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, name).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

func TestAdmin_CreateProvisionsByTier(t *testing.T) {
	t.Parallel()
	s := testenv.NewStack(t, testenv.StackOptions{})
	prem := adminCreate(t, s, map[string]any{"identifier": "big-co", "name": "Big Co", "tier": "premium", "metadata": map[string]any{"plan": "gold"}})
	std := adminCreate(t, s, map[string]any{"identifier": "small-co", "name": "Small Co", "tier": "standard"})
	deflt := adminCreate(t, s, map[string]any{"identifier": "no-tier", "name": "No Tier"})

	if prem.Isolation != tenancy.IsolationSchema || prem.Status != tenancy.StatusActive || prem.Tier != tenancy.TierPremium {
		t.Errorf("premium tenant: %+v, want active schema tenant", prem)
	}
	if !schemaExists(t, s, "tenant_big_co") {
		t.Error("premium tenant's schema tenant_big_co does not exist")
	}
	var tables int
	if err := s.Owner.QueryRow(`SELECT count(*) FROM pg_tables WHERE schemaname = 'tenant_big_co' AND tablename = 'projects'`).Scan(&tables); err != nil || tables != 1 {
		t.Errorf("premium schema not migrated: projects tables = %d (%v)", tables, err)
	}
	var meta map[string]any
	if err := json.Unmarshal(prem.Metadata, &meta); err != nil || meta["plan"] != "gold" {
		t.Errorf("metadata %s, want plan=gold", prem.Metadata)
	}
	if prem.ID == uuid.Nil || prem.CreatedAt.IsZero() || prem.UpdatedAt.IsZero() || prem.Name != "Big Co" || prem.Identifier != "big-co" {
		t.Errorf("premium tenant fields: %+v", prem)
	}
	for _, tn := range []tenancy.Tenant{std, deflt} {
		if tn.Isolation != tenancy.IsolationRLS || tn.Status != tenancy.StatusActive || tn.Tier != tenancy.TierStandard {
			t.Errorf("standard tenant %s: %+v, want active rls tenant", tn.Identifier, tn)
		}
		if schemaExists(t, s, tenancy.SchemaName(tn.Identifier)) {
			t.Errorf("standard tenant %s got a schema", tn.Identifier)
		}
		if string(tn.Metadata) != "{}" {
			t.Errorf("standard tenant %s metadata %s, want {}", tn.Identifier, tn.Metadata)
		}
	}
	// Each can use the tenant API right away, in its own storage.
	for _, tn := range []tenancy.Tenant{prem, std} {
		h := testenv.AsTenant(t, &tn)
		if res := s.Do(t, "POST", "/api/v1/projects", map[string]string{"name": "first"}, h...); res.Status != http.StatusCreated {
			t.Errorf("%s: create project %d %s", tn.Identifier, res.Status, res.Body)
		}
		var v struct{ Isolation string }
		s.Do(t, "GET", "/api/v1/tenant", nil, h...).JSON(t, &v)
		if v.Isolation != string(tn.Isolation) {
			t.Errorf("%s: /api/v1/tenant isolation %q, want %q", tn.Identifier, v.Isolation, tn.Isolation)
		}
	}
	var n int
	if err := s.Owner.QueryRow(`SELECT count(*) FROM tenant_big_co.projects`).Scan(&n); err != nil || n != 1 {
		t.Errorf("premium project not in its schema: %d %v", n, err)
	}
}

type tenantList struct {
	Items      []tenancy.Tenant `json:"items"`
	NextCursor *string          `json:"next_cursor"`
}

func adminList(t testing.TB, s *testenv.Stack, query string) tenantList {
	t.Helper()
	res := s.Do(t, "GET", "/admin/v1/tenants?"+query, nil, testenv.AsAdmin()...)
	if res.Status != http.StatusOK {
		t.Fatalf("list ?%s: %d %s", query, res.Status, res.Body)
	}
	var l tenantList
	res.JSON(t, &l)
	return l
}

func identifiers(ts []tenancy.Tenant) []string {
	out := make([]string, len(ts))
	for i, tn := range ts {
		out[i] = tn.Identifier
	}
	return out
}

func TestAdmin_ListFiltersAndPaging(t *testing.T) {
	t.Parallel()
	s := testenv.NewStack(t, testenv.StackOptions{})
	var created []string // in creation order
	for i := 0; i < 7; i++ {
		tier := "standard"
		if i%3 == 0 {
			tier = "premium"
		}
		id := fmt.Sprintf("org-%02d", i)
		name := fmt.Sprintf("Org %d", i)
		if i == 4 {
			name = "Special_Widgets 100%"
		}
		adminCreate(t, s, map[string]any{"identifier": id, "name": name, "tier": tier})
		created = append(created, id)
	}
	newestFirst := make([]string, len(created))
	for i, id := range created {
		newestFirst[len(created)-1-i] = id
	}

	all := adminList(t, s, "")
	if got := identifiers(all.Items); strings.Join(got, ",") != strings.Join(newestFirst, ",") || all.NextCursor != nil {
		t.Errorf("list all: %v next=%v, want %v and null cursor", got, all.NextCursor, newestFirst)
	}
	var raw map[string]json.RawMessage
	s.Do(t, "GET", "/admin/v1/tenants", nil, testenv.AsAdmin()...).JSON(t, &raw)
	if string(raw["next_cursor"]) != "null" {
		t.Errorf("next_cursor at end is %s, want null", raw["next_cursor"])
	}

	// Paging: limit 3 walks every tenant once, newest first, then a null cursor.
	var paged []string
	q, pages := "limit=3", 0
	for {
		p := adminList(t, s, q)
		pages++
		paged = append(paged, identifiers(p.Items)...)
		if p.NextCursor == nil {
			break
		}
		if len(p.Items) != 3 || pages > 5 {
			t.Fatalf("page %d has %d items with a next cursor", pages, len(p.Items))
		}
		q = "limit=3&cursor=" + url.QueryEscape(*p.NextCursor)
	}
	if strings.Join(paged, ",") != strings.Join(newestFirst, ",") || pages != 3 {
		t.Errorf("paged %v in %d pages, want %v in 3", paged, pages, newestFirst)
	}

	// Suspend one premium tenant; filters combine.
	if res := s.Do(t, "PATCH", "/admin/v1/tenants/"+all.Items[len(all.Items)-1].ID.String(), map[string]string{"status": "suspended"}, testenv.AsAdmin()...); res.Status != http.StatusOK {
		t.Fatalf("suspend: %d %s", res.Status, res.Body)
	}
	filters := map[string][]string{
		"tier=premium":               {"org-06", "org-03", "org-00"},
		"tier=standard":              {"org-05", "org-04", "org-02", "org-01"},
		"status=suspended":           {"org-00"},
		"status=active&tier=premium": {"org-06", "org-03"},
		"status=provisioning":        {},
		"q=ORG-0":                    newestFirst,
		"q=special_w":                {"org-04"},
		"q=100%25":                   {"org-04"},
		"q=%25":                      {"org-04"},
		"q=_":                        {"org-04"},
		"q=org-05":                   {"org-05"},
		"q=nobody":                   {},
		"q=x'%3B%20drop%20table%20tenancy.tenants%20--": {},
		"tier=standard&limit=2":                         {"org-05", "org-04"},
	}
	for query, want := range filters {
		got := identifiers(adminList(t, s, query).Items)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("list ?%s: %v, want %v", query, got, want)
		}
	}
	// Filtered paging carries the filter across pages.
	p1 := adminList(t, s, "tier=standard&limit=3")
	if p1.NextCursor == nil {
		t.Fatal("tier=standard&limit=3: no next cursor")
	}
	p2 := adminList(t, s, "tier=standard&limit=3&cursor="+url.QueryEscape(*p1.NextCursor))
	if got := identifiers(p2.Items); strings.Join(got, ",") != "org-01" || p2.NextCursor != nil {
		t.Errorf("second filtered page: %v next=%v, want [org-01] null", got, p2.NextCursor)
	}
	for _, bad := range []string{"status=deleted", "tier=gold", "limit=0", "limit=101", "limit=x", "cursor=garbage", "q=" + strings.Repeat("q", 201)} {
		p := requireProblem(t, "list ?"+bad, s.Do(t, "GET", "/admin/v1/tenants?"+bad, nil, testenv.AsAdmin()...), 400, apperr.ValidationFailed)
		if len(p.Errors) == 0 || !strings.HasPrefix(bad, p.Errors[0].Field+"=") {
			t.Errorf("list ?%s: errors %+v, want the offending field named", bad, p.Errors)
		}
	}
}

func TestAdmin_GetPatchDelete(t *testing.T) {
	t.Parallel()
	s := testenv.NewStack(t, testenv.StackOptions{})
	for _, tier := range []string{"premium", "standard"} {
		tn := adminCreate(t, s, map[string]any{"identifier": "life-" + tier, "name": "Life", "tier": tier,
			"metadata": map[string]any{"a": 1, "nested": map[string]any{"x": 1}}})
		path := "/admin/v1/tenants/" + tn.ID.String()
		h := testenv.AsTenant(t, &tn)
		if res := s.Do(t, "POST", "/api/v1/projects", map[string]string{"name": "doomed"}, h...); res.Status != http.StatusCreated {
			t.Fatalf("%s: create project: %d %s", tier, res.Status, res.Body)
		}

		var got tenancy.Tenant
		res := s.Do(t, "GET", path, nil, testenv.AsAdmin()...)
		res.JSON(t, &got)
		if res.Status != http.StatusOK || got.ID != tn.ID || got.Identifier != tn.Identifier {
			t.Fatalf("%s: get: %d %s", tier, res.Status, res.Body)
		}

		res = s.Do(t, "PATCH", path, map[string]any{"name": "Renamed", "metadata": map[string]any{"b": "two", "nested": map[string]any{"y": 2}}}, testenv.AsAdmin()...)
		res.JSON(t, &got)
		var meta map[string]any
		_ = json.Unmarshal(got.Metadata, &meta)
		if res.Status != http.StatusOK || got.Name != "Renamed" || got.Status != tenancy.StatusActive {
			t.Errorf("%s: patch: %d %s", tier, res.Status, res.Body)
		}
		// Merge is shallow (jsonb ||): top-level keys kept, a given key replaced.
		if meta["a"] != float64(1) || meta["b"] != "two" || fmt.Sprint(meta["nested"]) != "map[y:2]" {
			t.Errorf("%s: metadata after merge %s, want a kept, b added, nested replaced", tier, got.Metadata)
		}
		if !got.UpdatedAt.After(tn.UpdatedAt) {
			t.Errorf("%s: updated_at not advanced: %v -> %v", tier, tn.UpdatedAt, got.UpdatedAt)
		}
		res = s.Do(t, "PATCH", path, map[string]any{"status": "suspended"}, testenv.AsAdmin()...)
		res.JSON(t, &got)
		if res.Status != http.StatusOK || got.Status != tenancy.StatusSuspended || got.Name != "Renamed" {
			t.Errorf("%s: suspend: %d %s", tier, res.Status, res.Body)
		}
		res = s.Do(t, "PATCH", path, map[string]any{"status": "active"}, testenv.AsAdmin()...)
		res.JSON(t, &got)
		if res.Status != http.StatusOK || got.Status != tenancy.StatusActive {
			t.Errorf("%s: activate: %d %s", tier, res.Status, res.Body)
		}
		for _, bad := range []map[string]any{{"status": "provisioning"}, {"status": "deleted"}, {"name": ""}, {"name": strings.Repeat("n", 201)}, {"metadata": []int{1}}, {"metadata": "str"}} {
			requireProblem(t, fmt.Sprintf("%s: patch %v", tier, bad), s.Do(t, "PATCH", path, bad, testenv.AsAdmin()...), 400, apperr.ValidationFailed)
		}

		if res := s.Do(t, "DELETE", path, nil, testenv.AsAdmin()...); res.Status != http.StatusNoContent || len(res.Body) != 0 {
			t.Fatalf("%s: delete: %d %s", tier, res.Status, res.Body)
		}
		requireProblem(t, tier+": get after delete", s.Do(t, "GET", path, nil, testenv.AsAdmin()...), 404, apperr.NotFound)
		requireProblem(t, tier+": delete twice", s.Do(t, "DELETE", path, nil, testenv.AsAdmin()...), 404, apperr.NotFound)
		requireProblem(t, tier+": patch after delete", s.Do(t, "PATCH", path, map[string]string{"name": "x"}, testenv.AsAdmin()...), 404, apperr.NotFound)
		requireProblem(t, tier+": token after delete", s.Do(t, "GET", "/api/v1/tenant", nil, h...), 404, apperr.TenantNotFound)
		if schemaExists(t, s, tenancy.SchemaName(tn.Identifier)) {
			t.Errorf("%s: schema still exists after delete", tier)
		}
		var rows int
		if err := s.Owner.QueryRow(`SELECT count(*) FROM tenancy.tenants WHERE id = $1`, tn.ID).Scan(&rows); err != nil || rows != 0 {
			t.Errorf("%s: registry row remains (%d, %v)", tier, rows, err)
		}
	}
	for _, p := range []string{"/admin/v1/tenants/" + uuid.NewString(), "/admin/v1/tenants/not-a-uuid", "/admin/v1/tenants/x';drop"} {
		requireProblem(t, "get "+p, s.Do(t, "GET", p, nil, testenv.AsAdmin()...), 404, apperr.NotFound)
		requireProblem(t, "patch "+p, s.Do(t, "PATCH", p, map[string]string{"name": "x"}, testenv.AsAdmin()...), 404, apperr.NotFound)
		requireProblem(t, "delete "+p, s.Do(t, "DELETE", p, nil, testenv.AsAdmin()...), 404, apperr.NotFound)
	}
}

func TestAdmin_APIKeys(t *testing.T) {
	t.Parallel()
	s := testenv.NewStack(t, testenv.StackOptions{})
	tn := adminCreate(t, s, map[string]any{"identifier": "keyed", "name": "Keyed", "tier": "premium"})
	other := adminCreate(t, s, map[string]any{"identifier": "other", "name": "Other"})
	keysPath := "/admin/v1/tenants/" + tn.ID.String() + "/api-keys"

	res := s.Do(t, "POST", keysPath, map[string]string{"name": "ci"}, testenv.AsAdmin()...)
	var k struct {
		ID        uuid.UUID `json:"id"`
		Name      string    `json:"name"`
		Prefix    string    `json:"prefix"`
		Key       string    `json:"key"`
		CreatedAt string    `json:"created_at"`
	}
	res.JSON(t, &k)
	if res.Status != http.StatusCreated || k.ID == uuid.Nil || k.Name != "ci" || k.CreatedAt == "" || k.Key == "" || !strings.HasPrefix(k.Key, k.Prefix) || len(k.Prefix) >= len(k.Key) {
		t.Fatalf("create key: %d %s", res.Status, res.Body)
	}

	// Shown once: neither the tenant views nor the database hold the key.
	for _, p := range []string{"/admin/v1/tenants/" + tn.ID.String(), "/admin/v1/tenants"} {
		if body := s.Do(t, "GET", p, nil, testenv.AsAdmin()...).Body; strings.Contains(string(body), k.Key) {
			t.Errorf("GET %s shows the key", p)
		}
	}
	var plain int
	if err := s.Owner.QueryRow(`SELECT count(*) FROM tenancy.api_keys WHERE row_to_json(api_keys)::text LIKE '%' || $1 || '%'`, k.Key[len(k.Prefix)+1:]).Scan(&plain); err != nil || plain != 0 {
		t.Errorf("the key's secret is stored in plain text (%d rows, %v)", plain, err)
	}
	var hashed int
	if err := s.Owner.QueryRow(`SELECT count(*) FROM tenancy.api_keys WHERE hash = sha256(convert_to($1, 'UTF8'))`, k.Key).Scan(&hashed); err != nil || hashed != 1 {
		t.Errorf("the key's hash is not stored (%d rows, %v)", hashed, err)
	}

	if got := currentTenantID(t, s, "api key", "/api/v1/tenant", "X-API-Key", k.Key); got != tn.ID.String() {
		t.Errorf("api key resolved %q, want %s", got, tn.ID)
	}
	if res := s.Do(t, "POST", "/api/v1/projects", map[string]string{"name": "via key"}, "X-API-Key", k.Key); res.Status != http.StatusCreated {
		t.Errorf("create project via api key: %d %s", res.Status, res.Body)
	}

	// Revoking needs the owning tenant's path; another tenant's path is 404.
	requireProblem(t, "revoke via other tenant", s.Do(t, "DELETE", "/admin/v1/tenants/"+other.ID.String()+"/api-keys/"+k.ID.String(), nil, testenv.AsAdmin()...), 404, apperr.NotFound)
	if got := currentTenantID(t, s, "api key after foreign revoke", "/api/v1/tenant", "X-API-Key", k.Key); got != tn.ID.String() {
		t.Errorf("key stopped working after a revoke through another tenant")
	}
	if res := s.Do(t, "DELETE", keysPath+"/"+k.ID.String(), nil, testenv.AsAdmin()...); res.Status != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", res.Status, res.Body)
	}
	requireProblem(t, "revoked key", s.Do(t, "GET", "/api/v1/tenant", nil, "X-API-Key", k.Key), 401, apperr.InvalidCredentials)
	requireProblem(t, "revoke twice", s.Do(t, "DELETE", keysPath+"/"+k.ID.String(), nil, testenv.AsAdmin()...), 404, apperr.NotFound)
	requireProblem(t, "revoke unknown", s.Do(t, "DELETE", keysPath+"/"+uuid.NewString(), nil, testenv.AsAdmin()...), 404, apperr.NotFound)
	requireProblem(t, "revoke malformed", s.Do(t, "DELETE", keysPath+"/nope", nil, testenv.AsAdmin()...), 404, apperr.NotFound)

	requireProblem(t, "key for unknown tenant", s.Do(t, "POST", "/admin/v1/tenants/"+uuid.NewString()+"/api-keys", map[string]string{"name": "x"}, testenv.AsAdmin()...), 404, apperr.NotFound)
	for _, bad := range []map[string]any{{"name": ""}, {}, {"name": strings.Repeat("k", 201)}} {
		requireProblem(t, fmt.Sprintf("key %v", bad), s.Do(t, "POST", keysPath, bad, testenv.AsAdmin()...), 400, apperr.ValidationFailed)
	}

	// Two keys of one tenant work independently.
	res1 := s.Do(t, "POST", keysPath, map[string]string{"name": "one"}, testenv.AsAdmin()...)
	res2 := s.Do(t, "POST", keysPath, map[string]string{"name": "two"}, testenv.AsAdmin()...)
	var k1, k2 struct{ ID, Key string }
	res1.JSON(t, &k1)
	res2.JSON(t, &k2)
	if k1.Key == k2.Key {
		t.Fatal("two keys are equal")
	}
	s.Do(t, "DELETE", keysPath+"/"+k1.ID, nil, testenv.AsAdmin()...)
	requireProblem(t, "revoked first key", s.Do(t, "GET", "/api/v1/tenant", nil, "X-API-Key", k1.Key), 401, apperr.InvalidCredentials)
	if got := currentTenantID(t, s, "second key", "/api/v1/tenant", "X-API-Key", k2.Key); got != tn.ID.String() {
		t.Error("revoking one key broke another")
	}
}

// TestAdmin_RefusesAnythingButTheAdminToken: tenant credentials never open
// the admin API, whatever else they may open.
func TestAdmin_RefusesAnythingButTheAdminToken(t *testing.T) {
	t.Parallel()
	s := testenv.NewStack(t, testenv.StackOptions{})
	tn := s.Tenant(t, "tenant-a", tenancy.TierStandard)
	_, key, err := s.Store.CreateAPIKey(context.Background(), tn.ID, "k")
	if err != nil {
		t.Fatal(err)
	}
	refused := []struct {
		name    string
		headers []string
		code    apperr.Code
	}{
		{"no credentials", nil, apperr.MissingCredentials},
		{"tenant jwt", testenv.AsTenant(t, tn), apperr.InvalidCredentials},
		{"tenant api key", []string{"X-API-Key", key}, apperr.MissingCredentials},
		{"X-Tenant-ID", []string{"X-Tenant-ID", tn.ID.String()}, apperr.MissingCredentials},
		{"wrong token", bearer("wrong-admin-token-wrong-admin-token-0123"), apperr.InvalidCredentials},
		{"admin token prefix", bearer(testenv.AdminToken[:len(testenv.AdminToken)-1]), apperr.InvalidCredentials},
		{"admin token plus a byte", bearer(testenv.AdminToken + "x"), apperr.InvalidCredentials},
		{"admin token in upper case", bearer(strings.ToUpper(testenv.AdminToken)), apperr.InvalidCredentials},
		{"admin token as basic", []string{"Authorization", "Basic " + testenv.AdminToken}, apperr.MissingCredentials},
		{"admin token as api key", []string{"X-API-Key", testenv.AdminToken}, apperr.MissingCredentials},
	}
	routes := [][2]string{{"GET", "/admin/v1/tenants"}, {"POST", "/admin/v1/tenants"}, {"GET", "/admin/v1/tenants/" + tn.ID.String()},
		{"PATCH", "/admin/v1/tenants/" + tn.ID.String()}, {"DELETE", "/admin/v1/tenants/" + tn.ID.String()},
		{"POST", "/admin/v1/tenants/" + tn.ID.String() + "/api-keys"}}
	for _, r := range refused {
		for _, rt := range routes {
			var body any
			if rt[0] == "POST" || rt[0] == "PATCH" {
				body = map[string]string{"identifier": "sneaky", "name": "sneaky", "status": "suspended"}
			}
			requireProblem(t, r.name+" "+rt[0]+" "+rt[1], s.Do(t, rt[0], rt[1], body, r.headers...), 401, r.code)
		}
	}
	// Nothing changed.
	got, err := s.Store.TenantByID(context.Background(), tn.ID)
	if err != nil || got.Status != tenancy.StatusActive {
		t.Errorf("tenant changed by refused requests: %+v %v", got, err)
	}
	if _, err := s.Store.TenantByIdentifier(context.Background(), "sneaky"); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("refused create left a tenant: %v", err)
	}
	if res := s.Do(t, "GET", "/admin/v1/tenants", nil, testenv.AsAdmin()...); res.Status != http.StatusOK {
		t.Errorf("admin token refused: %d %s", res.Status, res.Body)
	}
}

func TestAdmin_DisabledIs404(t *testing.T) {
	t.Parallel()
	s := testenv.NewStack(t, testenv.StackOptions{AdminDisabled: true})
	for _, rt := range [][2]string{{"GET", "/admin/v1/tenants"}, {"POST", "/admin/v1/tenants"}, {"GET", "/admin/v1/tenants/" + uuid.NewString()}} {
		var body any
		if rt[0] == "POST" {
			body = map[string]string{"identifier": "ghost", "name": "ghost"}
		}
		for what, h := range map[string][]string{"admin token": testenv.AsAdmin(), "nothing": nil} {
			requireProblem(t, what+" "+rt[0]+" "+rt[1], s.Do(t, rt[0], rt[1], body, h...), 404, apperr.NotFound)
		}
	}
	var n int
	if err := s.Owner.QueryRow(`SELECT count(*) FROM tenancy.tenants`).Scan(&n); err != nil || n != 0 {
		t.Errorf("disabled admin API created tenants: %d %v", n, err)
	}
}

func TestAdmin_DuplicateIdentifierConflicts(t *testing.T) {
	t.Parallel()
	s := testenv.NewStack(t, testenv.StackOptions{})
	first := adminCreate(t, s, map[string]any{"identifier": "dupe", "name": "First", "tier": "premium"})
	if res := s.Do(t, "POST", "/api/v1/projects", map[string]string{"name": "keep me"}, testenv.AsTenant(t, &first)...); res.Status != http.StatusCreated {
		t.Fatalf("create project: %d %s", res.Status, res.Body)
	}
	for _, tier := range []string{"premium", "standard"} {
		requireProblem(t, "duplicate "+tier, s.Do(t, "POST", "/admin/v1/tenants", map[string]any{"identifier": "dupe", "name": "Second", "tier": tier}, testenv.AsAdmin()...), 409, apperr.Conflict)
	}
	// The first tenant and its schema are untouched.
	var n int
	if err := s.Owner.QueryRow(`SELECT count(*) FROM tenant_dupe.projects`).Scan(&n); err != nil || n != 1 {
		t.Errorf("first tenant's data after conflicts: %d %v", n, err)
	}
	l := adminList(t, s, "")
	if len(l.Items) != 1 || l.Items[0].Name != "First" {
		t.Errorf("tenants after conflicts: %+v", l.Items)
	}
}

// TestAdmin_HostileIdentifiersRejectedBeforeSQL: malformed identifiers get
// validation_failed naming the field, and create neither a row nor a schema.
func TestAdmin_HostileIdentifiersRejectedBeforeSQL(t *testing.T) {
	t.Parallel()
	s := testenv.NewStack(t, testenv.StackOptions{})
	var schemasBefore int
	if err := s.Owner.QueryRow(`SELECT count(*) FROM pg_namespace`).Scan(&schemasBefore); err != nil {
		t.Fatal(err)
	}
	hostile := []string{"Bad_Slug", "a", "ab-", "-ab", "1abc", "x;drop schema public", `x"; drop schema public cascade; --`,
		strings.Repeat("a", 40), strings.Repeat("a", 33), "ünïcode", "аcme" /* Cyrillic a */, "", " acme", "acme ", "ac me",
		"acme\n", "acme\x00", "ACME", "tenant_x", "a.b", "a/b", "../etc", "acme%"}
	for _, id := range hostile {
		for _, tier := range []string{"premium", "standard"} {
			p := requireProblem(t, fmt.Sprintf("create %q %s", id, tier),
				s.Do(t, "POST", "/admin/v1/tenants", map[string]any{"identifier": id, "name": "Hostile", "tier": tier}, testenv.AsAdmin()...),
				400, apperr.ValidationFailed)
			found := false
			for _, e := range p.Errors {
				found = found || (e.Field == "identifier" && e.Message != "")
			}
			if !found {
				t.Errorf("create %q: errors %+v, want an entry for identifier", id, p.Errors)
			}
		}
	}
	// Missing identifier, several bad fields at once: every one is named.
	p := requireProblem(t, "all fields bad", s.Do(t, "POST", "/admin/v1/tenants", map[string]any{"name": "", "tier": "gold", "metadata": []int{1}}, testenv.AsAdmin()...), 400, apperr.ValidationFailed)
	fields := map[string]bool{}
	for _, e := range p.Errors {
		fields[e.Field] = true
	}
	for _, f := range []string{"identifier", "name", "tier", "metadata"} {
		if !fields[f] {
			t.Errorf("all fields bad: no error for %s in %+v", f, p.Errors)
		}
	}
	var rows, schemasAfter int
	if err := s.Owner.QueryRow(`SELECT count(*) FROM tenancy.tenants`).Scan(&rows); err != nil || rows != 0 {
		t.Errorf("hostile creates left %d tenant rows (%v)", rows, err)
	}
	if err := s.Owner.QueryRow(`SELECT count(*) FROM pg_namespace`).Scan(&schemasAfter); err != nil || schemasAfter != schemasBefore {
		t.Errorf("schemas %d -> %d after hostile creates (%v)", schemasBefore, schemasAfter, err)
	}
	if !schemaExists(t, s, "public") {
		t.Fatal("schema public is gone")
	}
}

func TestAdmin_PremiumTenantIDsPlaceAStandardTenantInItsOwnSchema(t *testing.T) {
	t.Parallel()
	forced := uuid.New()
	s := testenv.NewStack(t, testenv.StackOptions{Placement: &tenancy.Placement{
		Strategy: tenancy.Hybrid, PremiumIDs: map[uuid.UUID]bool{forced: true}}})

	var got tenancy.Tenant
	res := s.Do(t, "POST", "/admin/v1/tenants", map[string]any{"id": forced, "identifier": "forced", "name": "Forced", "tier": "standard"}, testenv.AsAdmin()...)
	if res.Status != http.StatusCreated {
		t.Fatalf("create with id: %d %s", res.Status, res.Body)
	}
	res.JSON(t, &got)
	if got.ID != forced || got.Tier != tenancy.TierStandard || got.Isolation != tenancy.IsolationSchema {
		t.Fatalf("got id %s tier %s isolation %s, want %s standard schema", got.ID, got.Tier, got.Isolation, forced)
	}
	res = s.Do(t, "POST", "/admin/v1/tenants", map[string]any{"identifier": "plain", "name": "Plain", "tier": "standard"}, testenv.AsAdmin()...)
	res.JSON(t, &got)
	if res.Status != http.StatusCreated || got.Isolation != tenancy.IsolationRLS {
		t.Fatalf("unlisted standard tenant: %d isolation %s, want 201 rls", res.Status, got.Isolation)
	}
	res = s.Do(t, "POST", "/admin/v1/tenants", map[string]any{"id": forced, "identifier": "other", "name": "Dup", "tier": "standard"}, testenv.AsAdmin()...)
	if res.Status != http.StatusConflict {
		t.Fatalf("duplicate id: %d %s, want 409", res.Status, res.Body)
	}
}
