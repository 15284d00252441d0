package http_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/your-org/tenantkit/internal/apperr"
	"github.com/your-org/tenantkit/internal/models"
	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/testenv"
)

// countProjects counts a tenant's projects as the owner, bound to it (forced RLS).
func countProjects(t testing.TB, d *testenv.DB, tn *tenancy.Tenant) int {
	t.Helper()
	ctx := context.Background()
	tx, err := d.Owner.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT set_config('app.current_tenant', $1, true)`, tn.ID.String()); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM public.projects WHERE tenant_id = $1`, tn.ID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Why row 1: with jwt in the chain, a subdomain or path names a tenant but
// proves nothing: no credential is 401 and nothing is created; a token of
// one tenant with another's subdomain or path is the uniform 404.
func TestIdentification_IdentifiersWithoutCredentialAreRefused(t *testing.T) {
	t.Parallel()
	s := testenv.NewStack(t, testenv.StackOptions{Resolution: tenancy.ResolutionConfig{
		Strategies: []string{"jwt", "subdomain", "path"}, DomainSuffix: ".example.test"}})
	acme := s.Tenant(t, "acme", tenancy.TierStandard)
	beta := s.Tenant(t, "beta", tenancy.TierPremium)
	onHost := func(method, path, host string, body any, headers ...string) testenv.Response {
		t.Helper()
		var rd *bytes.Reader
		if body != nil {
			rd = bytes.NewReader(fmt.Appendf(nil, `{"name":%q}`, body))
			headers = append(headers, "Content-Type", "application/json")
		} else {
			rd = bytes.NewReader(nil)
		}
		req := newReq(t, s, method, path, rd, headers...)
		req.Host = host
		return doReq(t, s, req)
	}
	requireProblem(t, "subdomain, no credential", onHost("GET", "/api/v1/projects", "acme.example.test", nil), 401, apperr.MissingCredentials)
	requireProblem(t, "subdomain, anonymous POST", onHost("POST", "/api/v1/projects", "acme.example.test", "anon"), 401, apperr.MissingCredentials)
	requireProblem(t, "path, no credential", s.Do(t, "GET", "/t/acme/api/v1/projects", nil), 401, apperr.MissingCredentials)
	requireProblem(t, "path, anonymous POST", s.Do(t, "POST", "/t/acme/api/v1/projects", map[string]string{"name": "anon"}), 401, apperr.MissingCredentials)
	if n := countProjects(t, s.DB, acme); n != 0 {
		t.Fatalf("anonymous requests created %d projects", n)
	}

	betaToken := testenv.AsTenant(t, beta)
	p1 := requireProblem(t, "beta's token on acme's subdomain", onHost("GET", "/api/v1/tenant", "acme.example.test", nil, betaToken...), 404, apperr.TenantNotFound)
	p2 := requireProblem(t, "beta's token on acme's path", s.Do(t, "GET", "/t/acme/api/v1/tenant", nil, betaToken...), 404, apperr.TenantNotFound)
	p3 := requireProblem(t, "beta's token on an unknown subdomain", onHost("GET", "/api/v1/tenant", "nobody.example.test", nil, betaToken...), 404, apperr.TenantNotFound)
	p1.Instance, p2.Instance, p3.Instance = "", "", ""
	if !equalProblems(p1, p2) || !equalProblems(p1, p3) {
		t.Errorf("a disagreeing identifier must not tell which part was wrong: %+v / %+v / %+v", p1, p2, p3)
	}
	requireProblem(t, "subdomain and path disagree", onHost("GET", "/t/beta/api/v1/tenant", "acme.example.test", nil, testenv.AsTenant(t, acme)...), 404, apperr.TenantNotFound)

	// Agreement is served, by identifier or id; a token alone still works.
	for what, res := range map[string]testenv.Response{
		"token and own subdomain": onHost("GET", "/api/v1/tenant", "acme.example.test", nil, testenv.AsTenant(t, acme)...),
		"token and own path":      s.Do(t, "GET", "/t/acme/api/v1/tenant", nil, testenv.AsTenant(t, acme)...),
		"token and own id path":   s.Do(t, "GET", "/t/"+acme.ID.String()+"/api/v1/tenant", nil, testenv.AsTenant(t, acme)...),
		"token alone":             s.Do(t, "GET", "/api/v1/tenant", nil, testenv.AsTenant(t, acme)...),
	} {
		if res.Status != http.StatusOK || !strings.Contains(string(res.Body), acme.ID.String()) {
			t.Errorf("%s: %d %s", what, res.Status, res.Body)
		}
	}
}

// Why row 3: made-up methods and paths from anonymous clients add no metric series.
func TestMetrics_UnauthenticatedGarbageAddsNoSeries(t *testing.T) {
	t.Parallel()
	s := testenv.NewStack(t, testenv.StackOptions{})
	series := func() int {
		n := 0
		for _, l := range strings.Split(string(s.Do(t, "GET", "/metrics", nil).Body), "\n") {
			if strings.HasPrefix(l, "http_request") {
				n++
			}
		}
		return n
	}
	send := func(i int) {
		method := "M" + strings.Repeat("X", i%50) + strconv.Itoa(i)
		doReq(t, s, newReq(t, s, method, fmt.Sprintf("/api/v1/nothing/%d", i), nil))
		doReq(t, s, newReq(t, s, "GET", fmt.Sprintf("/random/%d", i), nil))
	}
	send(0)
	series() // scraping /metrics is itself a series, counted after the scrape
	before := series()
	for i := 1; i <= 300; i++ {
		send(i)
	}
	if after := series(); after != before {
		t.Errorf("300 made-up methods and paths grew the HTTP series from %d to %d", before, after)
	}
	body := string(s.Do(t, "GET", "/metrics", nil).Body)
	if !strings.Contains(body, `method="OTHER"`) || strings.Contains(body, "MXX") || strings.Contains(body, "/random") {
		t.Errorf("methods outside the standard set must be OTHER and unknown routes one label")
	}
}

// Why row 4: NUL and invalid UTF-8 are 400 validation_failed naming the
// field, on both tiers and on the admin API, and nothing is stored.
func TestHostileBytes_Are400NamingTheField(t *testing.T) {
	t.Parallel()
	s := testenv.NewStack(t, testenv.StackOptions{AuthFailureBurst: 1000})
	raw := func(body string) []byte { return []byte(body) }
	for _, tier := range []tenancy.Tier{tenancy.TierPremium, tenancy.TierStandard} {
		tn := s.Tenant(t, "hostile-"+string(tier), tier)
		h := testenv.AsTenant(t, tn)
		p := s.Do(t, "POST", "/api/v1/projects", map[string]string{"name": "ok"}, h...)
		var proj models.Project
		p.JSON(t, &proj)
		for what, c := range map[string]struct {
			method, path string
			body         []byte
			field        string
		}{
			"NUL escape in name":           {"POST", "/api/v1/projects", raw(`{"name":"a\u0000b"}`), "name"},
			"invalid UTF-8 in name":        {"POST", "/api/v1/projects", raw("{\"name\":\"a\xffb\"}"), "name"},
			"invalid UTF-8 in description": {"POST", "/api/v1/projects", raw("{\"name\":\"x\",\"description\":\"\xc3\"}"), "description"},
			"unpaired surrogate":           {"POST", "/api/v1/projects", raw(`{"name":"\ud800"}`), "name"},
			"NUL in patch":                 {"PATCH", "/api/v1/projects/" + proj.ID.String(), raw(`{"description":"\u0000"}`), "description"},
		} {
			res := s.Do(t, c.method, c.path, c.body, h...)
			pb := requireProblem(t, string(tier)+" "+what, res, 400, apperr.ValidationFailed)
			if len(pb.Errors) != 1 || pb.Errors[0].Field != c.field {
				t.Errorf("%s %s: errors %+v, want the field %q", tier, what, pb.Errors, c.field)
			}
		}
		q := requireProblem(t, string(tier)+" NUL in query", s.Do(t, "GET", "/api/v1/projects?cursor=%00", nil, h...), 400, apperr.ValidationFailed)
		if len(q.Errors) != 1 || q.Errors[0].Field != "cursor" {
			t.Errorf("query errors %+v", q.Errors)
		}
		if n := countProjects(t, s.DB, tn); tier == tenancy.TierStandard && n != 1 {
			t.Errorf("%s: %d projects stored, want only the valid one", tier, n)
		}
	}
	admin := testenv.AsAdmin()
	for what, c := range map[string]struct {
		body  string
		field string
	}{
		"NUL in name":                  {`{"identifier":"hb-one","name":"a\u0000","tier":"standard"}`, "name"},
		"NUL in metadata value":        {`{"identifier":"hb-two","name":"n","tier":"standard","metadata":{"plan":"\u0000"}}`, "metadata.plan"},
		"NUL in nested metadata key":   {`{"identifier":"hb-three","name":"n","tier":"standard","metadata":{"a":{"b\u0000":1}}}`, "metadata.a"},
		"invalid UTF-8 in metadata":    {"{\"identifier\":\"hb-four\",\"name\":\"n\",\"tier\":\"standard\",\"metadata\":{\"l\":[\"ok\",\"\xfe\"]}}", "metadata.l[1]"},
		"surrogate in metadata":        {`{"identifier":"hb-five","name":"n","tier":"standard","metadata":{"k":"\udc00"}}`, "metadata.k"},
		"invalid UTF-8 in stored name": {"{\"identifier\":\"hb-six\",\"name\":\"\xff\",\"tier\":\"standard\"}", "name"},
	} {
		pb := requireProblem(t, "admin "+what, s.Do(t, "POST", "/admin/v1/tenants", []byte(c.body), admin...), 400, apperr.ValidationFailed)
		if len(pb.Errors) != 1 || pb.Errors[0].Field != c.field {
			t.Errorf("admin %s: errors %+v, want the field %q", what, pb.Errors, c.field)
		}
	}
	tn := s.Tenant(t, "hb-patch", tenancy.TierStandard)
	requireProblem(t, "admin patch metadata", s.Do(t, "PATCH", "/admin/v1/tenants/"+tn.ID.String(), []byte(`{"metadata":{"x":"\u0000"}}`), admin...), 400, apperr.ValidationFailed)
	for _, q := range []string{"q=%00", "q=%ff", "status=%00", "%00=x"} {
		requireProblem(t, "admin list "+q, s.Do(t, "GET", "/admin/v1/tenants?"+q, nil, admin...), 400, apperr.ValidationFailed)
	}
	res := s.Do(t, "GET", "/admin/v1/tenants?q=hb-", nil, admin...)
	if res.Status != 200 || strings.Contains(string(res.Body), "hb-one") || strings.Contains(string(res.Body), "\ufffd") {
		t.Errorf("hostile tenants were stored: %d %s", res.Status, res.Body)
	}
	// Headers the kit reads.
	pb := requireProblem(t, "API key with invalid UTF-8", s.Do(t, "GET", "/api/v1/tenant", nil, "X-API-Key", "tk_\xff"+strings.Repeat("a", 40)), 400, apperr.ValidationFailed)
	if len(pb.Errors) != 1 || pb.Errors[0].Field != "header X-API-Key" {
		t.Errorf("header errors %+v", pb.Errors)
	}
	// Valid non-ASCII text is kept as sent.
	ok := s.Tenant(t, "hb-ok", tenancy.TierStandard)
	res = s.Do(t, "POST", "/api/v1/projects", []byte(`{"name":"Zürich \ud83d\ude00 ✓"}`), testenv.AsTenant(t, ok)...)
	if res.Status != http.StatusCreated || !strings.Contains(string(res.Body), "Zürich 😀 ✓") {
		t.Errorf("valid unicode: %d %s", res.Status, res.Body)
	}
}

// Why row 5: a token with a "crit" header the server does not understand is refused.
func TestJWT_UnknownCritHeaderIsRefused(t *testing.T) {
	t.Parallel()
	s := testenv.NewStack(t, testenv.StackOptions{})
	tn := s.Tenant(t, "crit", tenancy.TierStandard)
	claims := jwt.MapClaims{"tenant_id": tn.ID.String(), "exp": 9999999999}
	for what, crit := range map[string]any{"unknown": []string{"x-unknown"}, "empty": []string{}, "standard name": []string{"exp"}} {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
		tok.Header["crit"] = crit
		tok.Header["x-unknown"] = true
		signed, err := tok.SignedString([]byte(testenv.JWTSecret))
		if err != nil {
			t.Fatal(err)
		}
		requireProblem(t, "crit "+what, s.Do(t, "GET", "/api/v1/tenant", nil, "Authorization", "Bearer "+signed), 401, apperr.InvalidCredentials)
	}
	plain, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(testenv.JWTSecret))
	if got := currentTenantID(t, s, "no crit", "/api/v1/tenant", "Authorization", "Bearer "+plain); got != tn.ID.String() {
		t.Errorf("the same token without crit resolved %q", got)
	}
}

// countingStore counts API-key lookups that reach the registry.
type countingStore struct {
	*tenancy.PGStore
	keyLookups atomic.Int64
}

func (c *countingStore) TenantByAPIKey(ctx context.Context, key string) (*tenancy.Tenant, error) {
	c.keyLookups.Add(1)
	return c.PGStore.TenantByAPIKey(ctx, key)
}

// Why row 7: failed credential attempts from one address are throttled before
// any registry lookup; a valid credential from another address is served.
func TestAuthFailures_ThrottledPerAddressBeforeAnyLookup(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	store := &countingStore{PGStore: &tenancy.PGStore{DB: d.App}}
	// The test client is the trusted proxy, so X-Forwarded-For names the client.
	s := testenv.NewStackOn(t, d, testenv.StackOptions{Store: store, AuthFailureBurst: 5, AuthFailureRPS: 0.001,
		Resolution: tenancy.ResolutionConfig{Proxies: tenancy.TrustedProxies{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}}})
	tn := s.Tenant(t, "throttled", tenancy.TierStandard)
	key := createKey(t, s, tn)
	from := func(addr string, apiKey string) testenv.Response {
		return s.Do(t, "GET", "/api/v1/tenant", nil, "X-API-Key", apiKey, "X-Forwarded-For", addr)
	}
	random := func() string { return "tk_" + strings.ReplaceAll(uuid.NewString()+uuid.NewString(), "-", "") }
	for i := range 5 {
		requireProblem(t, fmt.Sprintf("failure %d", i+1), from("203.0.113.7", random()), 401, apperr.InvalidCredentials)
	}
	lookups := store.keyLookups.Load()
	for range 20 {
		res := from("203.0.113.7", random())
		requireProblem(t, "past the burst", res, 429, apperr.RateLimited)
		if s, err := strconv.Atoi(res.Header.Get("Retry-After")); err != nil || s < 1 {
			t.Fatalf("Retry-After %q", res.Header.Get("Retry-After"))
		}
	}
	if n := store.keyLookups.Load(); n != lookups {
		t.Errorf("throttled attempts made %d registry lookups, want none", n-lookups)
	}
	if got := from("198.51.100.9", key); got.Status != http.StatusOK {
		t.Errorf("a valid key from another address: %d %s", got.Status, got.Body)
	}
	// A spoofed X-Forwarded-For prefix does not move a client to another bucket:
	// the rightmost untrusted entry is the client.
	requireProblem(t, "spoofed left entry", from("198.51.100.9, 203.0.113.7", random()), 429, apperr.RateLimited)
	// IPv6 clients are one bucket per /64.
	for i := range 5 {
		from(fmt.Sprintf("2001:db8:1:2::%x", i+1), random())
	}
	requireProblem(t, "same /64", from("2001:db8:1:2::ffff", key), 429, apperr.RateLimited)
	if got := from("2001:db8:1:3::1", key); got.Status != http.StatusOK {
		t.Errorf("another /64: %d %s", got.Status, got.Body)
	}
}

// Admin token guesses are throttled per address like tenant credentials,
// in a budget of their own: past it, 429 before any comparison; the right
// token from another address still works, and bad tenant credentials never
// lock the operator out (nor the reverse).
func TestAuthFailures_AdminTokenGuessesAreThrottledPerAddress(t *testing.T) {
	t.Parallel()
	s := testenv.NewStack(t, testenv.StackOptions{AuthFailureBurst: 3, AuthFailureRPS: 0.001,
		Resolution: tenancy.ResolutionConfig{Proxies: tenancy.TrustedProxies{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}}})
	from := func(addr, token string) testenv.Response {
		return s.Do(t, "GET", "/admin/v1/tenants", nil, "Authorization", "Bearer "+token, "X-Forwarded-For", addr)
	}
	guess := strings.Repeat("g", 40)
	for i := range 3 {
		requireProblem(t, fmt.Sprintf("guess %d", i+1), from("203.0.113.8", guess), 401, apperr.InvalidCredentials)
	}
	res := from("203.0.113.8", testenv.AdminToken)
	requireProblem(t, "past the burst, even the right token", res, 429, apperr.RateLimited)
	if s, err := strconv.Atoi(res.Header.Get("Retry-After")); err != nil || s < 1 {
		t.Fatalf("Retry-After %q", res.Header.Get("Retry-After"))
	}
	// Tenant credentials from that address have their own budget.
	requireProblem(t, "tenant key from the same address", s.Do(t, "GET", "/api/v1/tenant", nil,
		"X-API-Key", "tk_"+strings.Repeat("0", 64), "X-Forwarded-For", "203.0.113.8"), 401, apperr.InvalidCredentials)
	if got := from("198.51.100.10", testenv.AdminToken); got.Status != http.StatusOK {
		t.Errorf("the admin token from another address: %d %s", got.Status, got.Body)
	}
	for range 5 { // exhausts 198.51.100.11's tenant budget
		s.Do(t, "GET", "/api/v1/tenant", nil, "X-API-Key", "tk_"+strings.Repeat("1", 64), "X-Forwarded-For", "198.51.100.11")
	}
	if got := from("198.51.100.11", testenv.AdminToken); got.Status != http.StatusOK {
		t.Errorf("the admin token from an address whose tenant budget is spent: %d %s", got.Status, got.Body)
	}
}

func createKey(t testing.TB, s *testenv.Stack, tn *tenancy.Tenant) string {
	t.Helper()
	res := s.Do(t, "POST", "/admin/v1/tenants/"+tn.ID.String()+"/api-keys", map[string]string{"name": "k"}, testenv.AsAdmin()...)
	var k struct{ Key string }
	res.JSON(t, &k)
	if res.Status != http.StatusCreated || k.Key == "" {
		t.Fatalf("create key: %d %s", res.Status, res.Body)
	}
	return k.Key
}

// The failure throttle's memory is bounded however many addresses fail.
func TestFailureThrottle_MemoryIsBounded(t *testing.T) {
	t.Parallel()
	f := tenancy.NewFailureThrottle(1, 50)
	for i := range 70_000 {
		f.Failed(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
	}
	if n := f.Tracked(); n > 65_536 {
		t.Errorf("tracks %d addresses", n)
	}
	if w := f.Wait(netip.MustParseAddr("192.0.2.1")); w != 0 {
		t.Errorf("an address that never failed waits %s", w)
	}
}

// Why row 6 (second half): a request that resolved its tenant just before
// the deletion cannot leave rows behind: the write fails (tenant_not_found),
// whether it runs after the deletion or races it.
func TestDelete_WriteOfARequestResolvedBeforeDeletionLeavesNoRows(t *testing.T) {
	t.Parallel()
	s := testenv.NewStack(t, testenv.StackOptions{})
	gdb, err := tenancy.OpenGORM(s.App, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	store := models.Projects{DB: gdb}
	ctx := context.Background()

	// Deterministic: resolved, then deleted, then written (and, premium,
	// read: its schema is gone).
	for _, tier := range []tenancy.Tier{tenancy.TierStandard, tenancy.TierPremium} {
		stale := s.Tenant(t, "stale-"+string(tier), tier)
		bound := tenancy.WithTenant(ctx, stale)
		if err := store.Create(bound, &models.Project{Name: "before"}); err != nil {
			t.Fatal(err) // prepares the statements under the tenant's search_path
		}
		if err := s.Lifecycle().Delete(ctx, stale.ID); err != nil {
			t.Fatal(err)
		}
		err = store.Create(bound, &models.Project{Name: "late"})
		if !tenancy.IsTenantGone(err) {
			t.Fatalf("%s: write after deletion: %v, want refused as tenant gone", tier, err)
		}
		if tier == tenancy.TierPremium {
			if _, _, err := store.List(bound, 10, nil); !tenancy.IsTenantGone(err) {
				t.Fatalf("premium: read after deletion: %v, want tenant gone", err)
			}
		} else if n := countProjects(t, s.DB, stale); n != 0 {
			t.Fatalf("%d rows left behind", n)
		}
	}

	// Raced through HTTP: writers keep posting while the admin deletes.
	for _, tier := range []tenancy.Tier{tenancy.TierStandard, tenancy.TierPremium} {
		tn := adminCreate(t, s, map[string]any{"identifier": "race-" + string(tier), "name": "race", "tier": string(tier)})
		h := testenv.AsTenant(t, &tn)
		var wg sync.WaitGroup
		var created atomic.Int64
		stop := make(chan struct{})
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					res := s.Do(t, "POST", "/api/v1/projects", map[string]string{"name": "racer"}, h...)
					switch {
					case res.Status == http.StatusCreated:
						created.Add(1)
					case res.Status != http.StatusForbidden && res.Status != http.StatusNotFound &&
						// 429: once deleted, the tenant's requests are failed
						// credential attempts, which the failure throttle limits.
						res.Status != http.StatusTooManyRequests:
						// Premium too: a dropped schema is tenant_not_found, not a 500.
						t.Errorf("%s racing write: %d %s", tier, res.Status, res.Body)
					}
				}
			}()
		}
		for created.Load() < 5 {
			res := s.Do(t, "GET", "/health", nil)
			_ = res
		}
		if res := s.Do(t, "DELETE", "/admin/v1/tenants/"+tn.ID.String(), nil, testenv.AsAdmin()...); res.Status != http.StatusNoContent {
			t.Fatalf("delete: %d %s", res.Status, res.Body)
		}
		close(stop)
		wg.Wait()
		if n := countProjects(t, s.DB, &tn); n != 0 {
			t.Errorf("%s: %d rows outlived their tenant", tier, n)
		}
	}
}
