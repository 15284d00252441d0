package http_test

import (
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/your-org/tenantkit/internal/apperr"
	"github.com/your-org/tenantkit/internal/models"
	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/testenv"
)

// malformedIdentifiers are refused by every identifier-carrying strategy
// with the same 404 as an unknown tenant.
var malformedIdentifiers = []string{"Bad_Slug", "a", "x;drop schema public", strings.Repeat("a", 40), "ünïcode", "ab-", "1abc", "a'b", `a"b`}

func TestStrategy_Header(t *testing.T) {
	t.Parallel()
	s := testenv.NewStack(t, testenv.StackOptions{Strategies: []string{"header"}, AllowUnauthenticated: true})
	acme := s.Tenant(t, "acme", tenancy.TierStandard)
	prem := s.Tenant(t, "prem", tenancy.TierPremium)
	for what, v := range map[string]string{"identifier": "acme", "uuid": acme.ID.String(), "upper-case uuid": strings.ToUpper(acme.ID.String()), "padded": "  acme "} {
		if got := currentTenantID(t, s, "header "+what, "/api/v1/tenant", "X-Tenant-ID", v); got != acme.ID.String() {
			t.Errorf("header %s %q resolved %q", what, v, got)
		}
	}
	if got := currentTenantID(t, s, "premium", "/api/v1/tenant", "X-Tenant-ID", "prem"); got != prem.ID.String() {
		t.Errorf("premium by header resolved %q", got)
	}
	notFound := append([]string{"nobody", uuid.NewString(), "{" + acme.ID.String() + "}", "urn:uuid:" + acme.ID.String(),
		strings.ReplaceAll(acme.ID.String(), "-", "")}, malformedIdentifiers...)
	var first problemBody
	for i, v := range notFound {
		p := requireProblem(t, "header "+v, s.Do(t, "GET", "/api/v1/tenant", nil, "X-Tenant-ID", v), 404, apperr.TenantNotFound)
		if i == 0 {
			first = p
		} else if !equalProblems(first, p) {
			t.Errorf("header %q: body %+v differs from an unknown tenant's %+v", v, p, first)
		}
	}
	requireProblem(t, "no header", s.Do(t, "GET", "/api/v1/tenant", nil), 401, apperr.MissingCredentials)
	requireProblem(t, "blank header", s.Do(t, "GET", "/api/v1/tenant", nil, "X-Tenant-ID", "   "), 401, apperr.MissingCredentials)
	// Another header name is not consulted; a bearer token is not either.
	requireProblem(t, "other header", s.Do(t, "GET", "/api/v1/tenant", nil, "X-Tenant", "acme"), 401, apperr.MissingCredentials)
	requireProblem(t, "bearer", s.Do(t, "GET", "/api/v1/tenant", nil, testenv.AsTenant(t, acme)...), 401, apperr.MissingCredentials)
}

func TestStrategy_Subdomain(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	acme := d.Tenant(t, "acme", tenancy.TierStandard)
	beta := d.Tenant(t, "beta", tenancy.TierPremium)
	sub := func(proxies ...string) *testenv.Stack {
		var tp tenancy.TrustedProxies
		for _, p := range proxies {
			tp = append(tp, netip.MustParsePrefix(p))
		}
		return testenv.NewStackOn(t, d, testenv.StackOptions{Resolution: tenancy.ResolutionConfig{
			Strategies: []string{"subdomain"}, DomainSuffix: ".example.test", Proxies: tp, AllowUnauthenticated: true}})
	}
	untrusted := sub()                       // believe no proxy
	elsewhere := sub("10.0.0.0/8")           // the test client is not inside
	trusted := sub("127.0.0.0/8", "::1/128") // the test client is the proxy
	get := func(s *testenv.Stack, host string, headers ...string) testenv.Response {
		t.Helper()
		req := newReq(t, s, "GET", "/api/v1/tenant", nil, headers...)
		if host != "" {
			req.Host = host
		}
		return doReq(t, s, req)
	}
	resolved := func(what string, res testenv.Response, want *tenancy.Tenant) {
		t.Helper()
		var v struct{ ID string }
		if res.Status == http.StatusOK {
			res.JSON(t, &v)
		}
		if res.Status != http.StatusOK || v.ID != want.ID.String() {
			t.Errorf("%s: %d %s, want %s", what, res.Status, res.Body, want.Identifier)
		}
	}
	for _, s := range []*testenv.Stack{untrusted, elsewhere, trusted} {
		resolved("Host acme", get(s, "acme.example.test"), acme)
		resolved("Host with port and case", get(s, "ACME.Example.Test:8443"), acme)
		resolved("Host beta (premium)", get(s, "beta.example.test"), beta)
		requireProblem(t, "apex host", get(s, "example.test"), 401, apperr.MissingCredentials)
		requireProblem(t, "foreign host", get(s, "acme.example.org"), 401, apperr.MissingCredentials)
		requireProblem(t, "suffix without dot", get(s, "acmeexample.test"), 401, apperr.MissingCredentials)
		requireProblem(t, "unknown tenant", get(s, "nobody.example.test"), 404, apperr.TenantNotFound)
		requireProblem(t, "nested label", get(s, "x.acme.example.test"), 404, apperr.TenantNotFound)
		for _, h := range []string{"Bad_Slug.example.test", "a.example.test", strings.Repeat("a", 40) + ".example.test", "ab-.example.test"} {
			requireProblem(t, "malformed host "+h, get(s, h), 404, apperr.TenantNotFound)
		}
	}
	// X-Forwarded-Host is believed only from a trusted proxy; X-Forwarded-For cannot make a peer trusted.
	for what, s := range map[string]*testenv.Stack{"no trusted proxies": untrusted, "client outside trusted proxies": elsewhere} {
		resolved(what+": forwarded host ignored", get(s, "beta.example.test", "X-Forwarded-Host", "acme.example.test"), beta)
		resolved(what+": spoofed X-Forwarded-For", get(s, "beta.example.test", "X-Forwarded-Host", "acme.example.test", "X-Forwarded-For", "10.1.2.3"), beta)
		requireProblem(t, what+": forwarded host only", get(s, "", "X-Forwarded-Host", "acme.example.test"), 401, apperr.MissingCredentials)
	}
	resolved("trusted proxy: forwarded host believed", get(trusted, "beta.example.test", "X-Forwarded-Host", "acme.example.test"), acme)
	resolved("trusted proxy: first forwarded host", get(trusted, "", "X-Forwarded-Host", "acme.example.test, beta.example.test"), acme)
	for _, h := range append([]string{"nobody.example.test"}, malformedIdentifiers...) {
		if !strings.HasSuffix(h, ".example.test") {
			h += ".example.test"
		}
		requireProblem(t, "forwarded malformed "+h, get(trusted, "", "X-Forwarded-Host", h), 404, apperr.TenantNotFound)
	}
}

func TestStrategy_PathStripsPrefix(t *testing.T) {
	t.Parallel()
	s := testenv.NewStack(t, testenv.StackOptions{Strategies: []string{"path"}, AllowUnauthenticated: true})
	acme := s.Tenant(t, "acme", tenancy.TierStandard)
	beta := s.Tenant(t, "beta", tenancy.TierPremium)
	for _, tn := range []*tenancy.Tenant{acme, beta} {
		for _, seg := range []string{tn.Identifier, tn.ID.String()} {
			if got := currentTenantID(t, s, "path "+seg, "/t/"+seg+"/api/v1/tenant", nil...); got != tn.ID.String() {
				t.Errorf("path /t/%s resolved %q", seg, got)
			}
		}
	}
	// Routed with the prefix stripped, and each path sees only its tenant's rows.
	res := s.Do(t, "POST", "/t/acme/api/v1/projects", map[string]string{"name": "acme plan"})
	var p models.Project
	res.JSON(t, &p)
	if res.Status != http.StatusCreated {
		t.Fatalf("create via path: %d %s", res.Status, res.Body)
	}
	if res := s.Do(t, "GET", "/t/acme/api/v1/projects/"+p.ID.String(), nil); res.Status != http.StatusOK {
		t.Errorf("get via path: %d %s", res.Status, res.Body)
	}
	requireProblem(t, "other tenant's path", s.Do(t, "GET", "/t/beta/api/v1/projects/"+p.ID.String(), nil), 404, apperr.NotFound)
	var pg struct{ Items []models.Project }
	s.Do(t, "GET", "/t/beta/api/v1/projects", nil).JSON(t, &pg)
	if len(pg.Items) != 0 {
		t.Errorf("beta lists %d projects of acme", len(pg.Items))
	}
	p404 := requireProblem(t, "unrouted after strip", s.Do(t, "GET", "/t/acme/api/v1/nothing", nil), 404, apperr.NotFound)
	if p404.Instance != "/api/v1/nothing" && p404.Instance != "/t/acme/api/v1/nothing" {
		t.Errorf("instance %q", p404.Instance)
	}

	requireProblem(t, "no prefix", s.Do(t, "GET", "/api/v1/tenant", nil), 401, apperr.MissingCredentials)
	requireProblem(t, "empty identifier", s.Do(t, "GET", "/t//api/v1/tenant", nil), 401, apperr.MissingCredentials)
	requireProblem(t, "prefix as a word", s.Do(t, "GET", "/tx/acme/api/v1/tenant", nil), 401, apperr.MissingCredentials)
	requireProblem(t, "unknown", s.Do(t, "GET", "/t/nobody/api/v1/tenant", nil), 404, apperr.TenantNotFound)
	requireProblem(t, "unknown uuid", s.Do(t, "GET", "/t/"+uuid.NewString()+"/api/v1/tenant", nil), 404, apperr.TenantNotFound)
	for _, seg := range []string{"Bad_Slug", "a", "x%3Bdrop%20schema%20public", strings.Repeat("a", 40), "%C3%BCnicode", "%2e%2e", "acme%00", "a%27b"} {
		requireProblem(t, "malformed path /t/"+seg, s.Do(t, "GET", "/t/"+seg+"/api/v1/tenant", nil), 404, apperr.TenantNotFound)
	}
	// With jwt in the chain, a token is required and a path must name its tenant.
	chained := testenv.NewStackOn(t, s.DB, testenv.StackOptions{Strategies: []string{"jwt", "path"}})
	if got := currentTenantID(t, chained, "jwt with own path", "/t/acme/api/v1/tenant", testenv.AsTenant(t, acme)...); got != acme.ID.String() {
		t.Errorf("jwt with own path resolved %q", got)
	}
	requireProblem(t, "jwt with another tenant's path", chained.Do(t, "GET", "/t/beta/api/v1/projects/"+p.ID.String(), nil, testenv.AsTenant(t, acme)...), 404, apperr.TenantNotFound)
	requireProblem(t, "jwt with another tenant's path (tenant)", chained.Do(t, "GET", "/t/beta/api/v1/tenant", nil, testenv.AsTenant(t, acme)...), 404, apperr.TenantNotFound)
	requireProblem(t, "path without jwt", chained.Do(t, "GET", "/t/beta/api/v1/tenant", nil), 401, apperr.MissingCredentials)
	// Skip paths stay unresolved with the path strategy too.
	if res := s.Do(t, "GET", "/health", nil); res.Status != http.StatusOK {
		t.Errorf("/health: %d", res.Status)
	}
}

func TestStrategy_CustomResolver(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	acme := d.Tenant(t, "acme", tenancy.TierStandard)
	beta := d.Tenant(t, "beta", tenancy.TierPremium)
	store := &tenancy.PGStore{DB: d.App}
	// A forker's resolver: the tenant identifier in an "org" query parameter,
	// returning the store's errors as they come.
	byQuery := tenancy.ResolverFunc(func(r *http.Request) (*tenancy.Tenant, error) {
		v := r.URL.Query().Get("org")
		if v == "" {
			return nil, tenancy.ErrNoCredential
		}
		return store.TenantByIdentifier(r.Context(), v)
	})
	// Undeclared, it is an identifier: alone it needs TENANCY_ALLOW_UNAUTHENTICATED.
	custom := map[string]tenancy.Resolver{"org": byQuery}
	if _, err := tenancy.NewChain(tenancy.ResolutionConfig{Strategies: []string{"org"}}, store, custom); !errors.Is(err, tenancy.ErrUnauthenticatedChain) {
		t.Errorf("a chain of one undeclared custom resolver started: %v", err)
	}
	s := testenv.NewStackOn(t, d, testenv.StackOptions{Strategies: []string{"org"}, Custom: custom, AllowUnauthenticated: true})
	if got := currentTenantID(t, s, "custom", "/api/v1/tenant?org=acme"); got != acme.ID.String() {
		t.Errorf("custom resolved %q", got)
	}
	requireProblem(t, "custom unknown", s.Do(t, "GET", "/api/v1/tenant?org=nobody", nil), 404, apperr.TenantNotFound)
	for _, v := range []string{"Bad_Slug", "a", "x%3Bdrop%20schema%20public", strings.Repeat("a", 40), "%C3%BCnicode"} {
		requireProblem(t, "custom malformed "+v, s.Do(t, "GET", "/api/v1/tenant?org="+v, nil), 404, apperr.TenantNotFound)
	}
	requireProblem(t, "custom absent", s.Do(t, "GET", "/api/v1/tenant", nil), 401, apperr.MissingCredentials)

	// Beside jwt, it only has to agree with the token's tenant.
	withJWT := testenv.NewStackOn(t, d, testenv.StackOptions{Strategies: []string{"org", "jwt"}, Custom: custom})
	if got := currentTenantID(t, withJWT, "custom agreeing with jwt", "/api/v1/tenant?org=acme", testenv.AsTenant(t, acme)...); got != acme.ID.String() {
		t.Errorf("custom agreeing with jwt resolved %q", got)
	}
	if got := currentTenantID(t, withJWT, "jwt without custom", "/api/v1/tenant", testenv.AsTenant(t, acme)...); got != acme.ID.String() {
		t.Errorf("jwt without custom resolved %q", got)
	}
	requireProblem(t, "custom naming another tenant than jwt", withJWT.Do(t, "GET", "/api/v1/tenant?org=beta", nil, testenv.AsTenant(t, acme)...), 404, apperr.TenantNotFound)
	requireProblem(t, "custom without jwt", withJWT.Do(t, "GET", "/api/v1/tenant?org=beta", nil), 401, apperr.MissingCredentials)

	// Declared a credential, it authenticates on its own.
	asCred := testenv.NewStackOn(t, d, testenv.StackOptions{Strategies: []string{"org"}, Custom: map[string]tenancy.Resolver{"org": tenancy.AsCredential(byQuery)}})
	if got := currentTenantID(t, asCred, "custom credential", "/api/v1/tenant?org=beta"); got != beta.ID.String() {
		t.Errorf("custom credential resolved %q", got)
	}

	if _, err := tenancy.NewChain(tenancy.ResolutionConfig{Strategies: []string{"nope"}}, store, nil); err == nil {
		t.Error("NewChain accepted an unknown strategy")
	}
}
