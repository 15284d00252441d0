package tenancy_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/uuid"

	"github.com/your-org/tenantkit/internal/apperr"
	"github.com/your-org/tenantkit/internal/tenancy"
)

// serve runs one request through m and reports what the next handler saw,
// or the error the middleware refused it with.
func serve(m *tenancy.Middleware, method, target string) (seen *tenancy.Tenant, path string, reached bool, err error) {
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached = true
		seen, _ = tenancy.FromContext(r.Context())
		path = r.URL.Path
	})
	h := m.Handler(next, func(w http.ResponseWriter, r *http.Request, e error) {
		err = e
		w.WriteHeader(499)
	})
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(method, target, nil))
	return seen, path, reached, err
}

func resolverOf(t *tenancy.Tenant, err error, calls *int) tenancy.Resolver {
	return tenancy.ResolverFunc(func(*http.Request) (*tenancy.Tenant, error) {
		*calls++
		return t, err
	})
}

func TestMiddleware_SkipPathsMatchWholeSegments(t *testing.T) {
	t.Parallel()
	calls := 0
	m := &tenancy.Middleware{Resolver: resolverOf(nil, tenancy.ErrNoCredential, &calls), Skip: []string{"/health", "/docs/", "/admin"}}
	for path, skipped := range map[string]bool{
		"/health": true, "/health/": true, "/health/live": true, "/docs": true, "/docs/openapi.json": true, "/admin/v1/tenants": true,
		"/healthz": false, "/health-check": false, "/docsx": false, "/administrator": false, "/api/v1/health": false, "/": false, "/HEALTH": false,
	} {
		calls = 0
		_, _, reached, err := serve(m, "GET", path)
		if skipped && (!reached || calls != 0 || err != nil) {
			t.Errorf("%s: resolved (calls=%d, err=%v), want skipped", path, calls, err)
		}
		if !skipped && (reached || calls != 1 || apperr.CodeOf(err) != apperr.MissingCredentials) {
			t.Errorf("%s: reached=%v calls=%d err=%v, want resolved and refused", path, reached, calls, err)
		}
	}
	for path, want := range map[string]bool{"/health": true, "/healthz": false, "/a/b": true, "/a/bc": false, "/a": false} {
		if got := tenancy.MatchesSegmentPrefix(path, []string{"/health", "/a/b/"}); got != want {
			t.Errorf("MatchesSegmentPrefix(%q) = %v, want %v", path, got, want)
		}
	}
}

func TestMiddleware_OptionsIsNeverResolved(t *testing.T) {
	t.Parallel()
	calls := 0
	m := &tenancy.Middleware{Resolver: resolverOf(nil, tenancy.ErrNoCredential, &calls)}
	if _, _, reached, err := serve(m, "OPTIONS", "/api/v1/projects"); !reached || err != nil || calls != 0 {
		t.Errorf("OPTIONS: reached=%v err=%v calls=%d", reached, err, calls)
	}
	for _, method := range []string{"GET", "HEAD", "POST", "PATCH", "DELETE", "PUT"} {
		calls = 0
		if _, _, reached, _ := serve(m, method, "/api/v1/projects"); reached || calls != 1 {
			t.Errorf("%s: reached=%v calls=%d, want resolved and refused", method, reached, calls)
		}
	}
}

func TestMiddleware_OnlyActiveTenantsAreServed(t *testing.T) {
	t.Parallel()
	for status, ok := range map[tenancy.Status]bool{tenancy.StatusActive: true, tenancy.StatusSuspended: false, tenancy.StatusProvisioning: false, "": false, "deleted": false} {
		calls := 0
		tn := &tenancy.Tenant{ID: uuid.New(), Identifier: "acme", Status: status}
		seen, _, reached, err := serve(&tenancy.Middleware{Resolver: resolverOf(tn, nil, &calls)}, "GET", "/api/v1/tenant")
		if ok && (!reached || seen != tn) {
			t.Errorf("%q: reached=%v seen=%v err=%v", status, reached, seen, err)
		}
		if !ok && (reached || apperr.CodeOf(err) != apperr.TenantSuspended) {
			t.Errorf("%q: reached=%v err=%v, want tenant_suspended", status, reached, err)
		}
	}
}

func TestMiddleware_ResolverErrorsBecomeContractCodes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		t    *tenancy.Tenant
		err  error
		want apperr.Code
	}{
		{"store not_found from a custom resolver", nil, apperr.New(apperr.NotFound, "tenant not found"), apperr.TenantNotFound},
		{"nil tenant without error", nil, nil, apperr.TenantNotFound},
		{"invalid credentials kept", nil, apperr.New(apperr.InvalidCredentials, "x"), apperr.InvalidCredentials},
		{"missing credentials kept", nil, tenancy.ErrNoCredential, apperr.MissingCredentials},
		{"dependency failure is not a client error", nil, errors.New("dial tcp: connection refused"), apperr.Internal},
		{"unavailable kept", nil, apperr.New(apperr.Unavailable, "db down"), apperr.Unavailable},
	}
	for _, c := range cases {
		calls := 0
		_, _, reached, err := serve(&tenancy.Middleware{Resolver: resolverOf(c.t, c.err, &calls)}, "GET", "/api/v1/tenant")
		if reached || apperr.CodeOf(err) != c.want {
			t.Errorf("%s: reached=%v err=%v, want %s", c.name, reached, err, c.want)
		}
	}
}

func TestMiddleware_PathStrategyStripsPrefixAndIdentifier(t *testing.T) {
	t.Parallel()
	acme := &tenancy.Tenant{ID: uuid.New(), Identifier: "acme", Status: tenancy.StatusActive}
	m := &tenancy.Middleware{Resolver: tenancy.PathResolver{Prefix: "/t", Lookup: newLookupSpy(acme)}, PathPrefix: "/t", Skip: []string{"/health"}}
	for target, want := range map[string]string{
		"/t/acme/api/v1/projects":                     "/api/v1/projects",
		"/t/acme/api/v1/projects/" + acme.ID.String(): "/api/v1/projects/" + acme.ID.String(),
		"/t/" + acme.ID.String() + "/api/v1/tenant":   "/api/v1/tenant",
		"/t/acme/api/v1/projects?limit=1":             "/api/v1/projects",
	} {
		seen, path, reached, err := serve(m, "GET", target)
		if !reached || seen != acme || path != want {
			t.Errorf("%s: reached=%v tenant=%v path=%q err=%v; want %q", target, reached, seen, path, err, want)
		}
	}
	if _, _, _, err := serve(m, "GET", "/t/nobody/api/v1/tenant"); apperr.CodeOf(err) != apperr.TenantNotFound {
		t.Errorf("unknown identifier: %v", err)
	}
	if _, path, reached, _ := serve(m, "GET", "/health"); !reached || path != "/health" {
		t.Errorf("skip path rewritten: %q", path)
	}
	// When another strategy decided, a prefix naming some other tenant is left alone (and so routes nowhere).
	byJWT := &tenancy.Middleware{Resolver: tenancy.ResolverFunc(func(*http.Request) (*tenancy.Tenant, error) { return acme, nil }), PathPrefix: "/t"}
	for target, want := range map[string]string{
		"/t/beta/api/v1/projects":                     "/t/beta/api/v1/projects",
		"/t/acme/api/v1/projects":                     "/api/v1/projects",
		"/t/" + acme.ID.String() + "/api/v1/projects": "/api/v1/projects",
		"/api/v1/projects":                            "/api/v1/projects",
	} {
		if seen, path, _, err := serve(byJWT, "GET", target); seen != acme || path != want {
			t.Errorf("decided elsewhere, %s: tenant=%v path=%q err=%v; want %q", target, seen, path, err, want)
		}
	}
	// Bind leaves the caller's request untouched.
	r := httptest.NewRequest("GET", "/t/acme/api/v1/projects", nil)
	bound, err := m.Bind(r)
	if err != nil || r.URL.Path != "/t/acme/api/v1/projects" || bound.URL.Path != "/api/v1/projects" {
		t.Errorf("Bind: original %q bound %v err %v", r.URL.Path, bound, err)
	}
	if _, ok := tenancy.FromContext(r.Context()); ok {
		t.Error("Bind bound the original request's context")
	}
}

func TestContext_TenantRoundTrip(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest("GET", "/", nil)
	if _, ok := tenancy.FromContext(r.Context()); ok {
		t.Error("fresh context has a tenant")
	}
	if _, err := tenancy.MustFromContext(r.Context()); apperr.CodeOf(err) != apperr.Internal {
		t.Errorf("MustFromContext without tenant: %v, want internal (a wiring bug)", err)
	}
	if _, ok := tenancy.FromContext(tenancy.WithTenant(r.Context(), nil)); ok {
		t.Error("a nil tenant counts as bound")
	}
	tn := &tenancy.Tenant{ID: uuid.New()}
	if got, err := tenancy.MustFromContext(tenancy.WithTenant(r.Context(), tn)); err != nil || got != tn {
		t.Errorf("round trip: %v %v", got, err)
	}
}
