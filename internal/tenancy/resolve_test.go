package tenancy_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/your-org/tenantkit/internal/apperr"
	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/testenv"
)

// lookupSpy is an in-memory Lookup that records every call, to show which
// inputs would have reached the database.
type lookupSpy struct {
	mu      sync.Mutex
	tenants []*tenancy.Tenant
	calls   []string // "id:<uuid>", "identifier:<s>", "key:<s>"
	fail    error
}

func newLookupSpy(ts ...*tenancy.Tenant) *lookupSpy { return &lookupSpy{tenants: ts} }

func (l *lookupSpy) find(call string, match func(*tenancy.Tenant) bool) (*tenancy.Tenant, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, call)
	if l.fail != nil {
		return nil, l.fail
	}
	for _, t := range l.tenants {
		if match(t) {
			return t, nil
		}
	}
	return nil, apperr.New(apperr.NotFound, "tenant not found")
}

func (l *lookupSpy) TenantByID(_ context.Context, id uuid.UUID) (*tenancy.Tenant, error) {
	return l.find("id:"+id.String(), func(t *tenancy.Tenant) bool { return t.ID == id })
}

func (l *lookupSpy) TenantByIdentifier(_ context.Context, s string) (*tenancy.Tenant, error) {
	return l.find("identifier:"+s, func(t *tenancy.Tenant) bool { return t.Identifier == s })
}

func (l *lookupSpy) TenantByAPIKey(_ context.Context, key string) (*tenancy.Tenant, error) {
	return l.find("key:"+key, func(*tenancy.Tenant) bool { return false })
}

func (l *lookupSpy) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.calls)
}

// unsafeCalls lists identifier lookups of strings that are not valid identifiers.
func (l *lookupSpy) unsafeCalls() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, c := range l.calls {
		if s, ok := strings.CutPrefix(c, "identifier:"); ok && !tenancy.ValidIdentifier(s) {
			out = append(out, c)
		}
	}
	return out
}

type stubResolver struct {
	t      *tenancy.Tenant
	err    error
	called *int
}

func (s stubResolver) Resolve(*http.Request) (*tenancy.Tenant, error) {
	*s.called++
	return s.t, s.err
}

func TestChain_FirstPresentCredentialDecides(t *testing.T) {
	t.Parallel()
	a := &tenancy.Tenant{ID: uuid.New(), Identifier: "alpha", Status: tenancy.StatusActive}
	b := &tenancy.Tenant{ID: uuid.New(), Identifier: "bravo", Status: tenancy.StatusActive}
	invalid := apperr.New(apperr.InvalidCredentials, "bad")
	req, _ := http.NewRequest("GET", "/", nil)
	cases := []struct {
		name      string
		results   []stubResolver
		want      *tenancy.Tenant
		code      apperr.Code
		callsUpTo int // resolvers consulted
	}{
		{"first present wins", []stubResolver{{t: a}, {t: b}}, a, "", 1},
		{"absent falls through", []stubResolver{{err: tenancy.ErrNoCredential}, {t: b}}, b, "", 2},
		{"present but invalid decides", []stubResolver{{err: invalid}, {t: b}}, nil, apperr.InvalidCredentials, 1},
		{"unknown tenant decides", []stubResolver{{err: apperr.New(apperr.TenantNotFound, "x")}, {t: b}}, nil, apperr.TenantNotFound, 1},
		{"all absent", []stubResolver{{err: tenancy.ErrNoCredential}, {err: tenancy.ErrNoCredential}}, nil, apperr.MissingCredentials, 2},
		{"wrapped absence still falls through", []stubResolver{{err: apperr.Wrap(apperr.MissingCredentials, errors.New("no header"), "")}, {t: a}}, a, "", 2},
	}
	for _, c := range cases {
		calls := 0
		var chain tenancy.Chain
		for _, r := range c.results {
			r.called = &calls
			chain = append(chain, r)
		}
		got, err := chain.Resolve(req)
		if got != c.want || apperr.CodeOf(err) != c.code || calls != c.callsUpTo {
			t.Errorf("%s: got %v, %v after %d resolvers; want %v, %q after %d", c.name, got, err, calls, c.want, c.code, c.callsUpTo)
		}
	}
	if _, err := (tenancy.Chain{}).Resolve(req); apperr.CodeOf(err) != apperr.MissingCredentials {
		t.Errorf("empty chain: %v", err)
	}
}

func TestSplitTenantPath(t *testing.T) {
	t.Parallel()
	cases := []struct {
		prefix, path, id, rest string
		ok                     bool
	}{
		{"/t", "/t/acme/api/v1/projects", "acme", "/api/v1/projects", true},
		{"/t/", "/t/acme/api/v1/projects", "acme", "/api/v1/projects", true},
		{"/t", "/t/acme", "acme", "/", true},
		{"/t", "/t/acme/", "acme", "/", true},
		{"/tenants", "/tenants/acme/x", "acme", "/x", true},
		{"/t", "/t//api", "", "", false},
		{"/t", "/t/", "", "", false},
		{"/t", "/t", "", "", false},
		{"/t", "/tx/acme/api", "", "", false},
		{"/t", "/api/v1/t/acme", "", "", false},
	}
	for _, c := range cases {
		id, rest, ok := tenancy.SplitTenantPath(c.prefix, c.path)
		if id != c.id || rest != c.rest || ok != c.ok {
			t.Errorf("SplitTenantPath(%q, %q) = %q, %q, %v; want %q, %q, %v", c.prefix, c.path, id, rest, ok, c.id, c.rest, c.ok)
		}
	}
}

func TestTrustedProxies_Trusts(t *testing.T) {
	t.Parallel()
	p := tenancy.TrustedProxies{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	for addr, want := range map[string]bool{
		"10.1.2.3:443": true, "10.1.2.3": true, "[fd00::1]:80": true, "[::ffff:10.0.0.1]:80": true,
		"11.0.0.1:443": false, "127.0.0.1:80": false, "[::1]:80": false, "": false, "garbage": false, "10.0.0.1:notaport": false,
	} {
		if got := p.Trusts(addr); got != want {
			t.Errorf("Trusts(%q) = %v, want %v", addr, got, want)
		}
	}
	if (tenancy.TrustedProxies{}).Trusts("10.0.0.1:1") {
		t.Error("an empty list trusts a peer")
	}
}

func TestSubdomainResolver_TakesTheLabelBeforeTheSuffix(t *testing.T) {
	t.Parallel()
	acme := &tenancy.Tenant{ID: uuid.New(), Identifier: "acme", Status: tenancy.StatusActive}
	l := newLookupSpy(acme)
	trusted := tenancy.SubdomainResolver{Suffix: ".example.test", Lookup: l, Proxies: tenancy.TrustedProxies{netip.MustParsePrefix("10.0.0.0/8")}}
	resolve := func(host, remote, xfh string) (*tenancy.Tenant, error) {
		r, _ := http.NewRequest("GET", "/api/v1/tenant", nil)
		r.Host, r.RemoteAddr = host, remote
		if xfh != "" {
			r.Header.Set("X-Forwarded-Host", xfh)
		}
		return trusted.Resolve(r)
	}
	cases := []struct {
		host, remote, xfh string
		want              *tenancy.Tenant
		code              apperr.Code
	}{
		{"acme.example.test", "192.0.2.1:1", "", acme, ""},
		{"AcMe.EXAMPLE.test:8080", "192.0.2.1:1", "", acme, ""},
		{"other.example.test", "192.0.2.1:1", "acme.example.test", nil, apperr.TenantNotFound}, // untrusted peer: header ignored
		{"other.example.test", "10.0.0.7:1", "acme.example.test", acme, ""},
		{"other.example.test", "10.0.0.7:1", " acme.example.test , x.example.test", acme, ""},
		{"example.test", "192.0.2.1:1", "", nil, apperr.MissingCredentials},
		{".example.test", "192.0.2.1:1", "", nil, apperr.MissingCredentials},
		{"acme.example.com", "192.0.2.1:1", "", nil, apperr.MissingCredentials},
		{"", "192.0.2.1:1", "", nil, apperr.MissingCredentials},
		{"a.acme.example.test", "192.0.2.1:1", "", nil, apperr.TenantNotFound},
		{"bad_slug.example.test", "192.0.2.1:1", "", nil, apperr.TenantNotFound},
		{"10.0.0.7:1", "10.0.0.7:1", "x;drop schema public.example.test", nil, apperr.TenantNotFound},
	}
	for _, c := range cases {
		got, err := resolve(c.host, c.remote, c.xfh)
		if got != c.want || apperr.CodeOf(err) != c.code {
			t.Errorf("host %q from %s (XFH %q): %v, %v; want %v, %q", c.host, c.remote, c.xfh, got, err, c.want, c.code)
		}
	}
	if u := l.unsafeCalls(); len(u) > 0 {
		t.Errorf("malformed labels reached the lookup: %q", u)
	}
}

var hostileIdentifiers = []string{"Bad_Slug", "a", "x;drop schema public", strings.Repeat("a", 40), "ünïcode", "",
	"ab-", "-ab", "1ab", `a"b`, "a'b", "a b", "a\x00b", "acme\n", "ACME", "tenant_acme", "a..b", "../x", "%61cme"}

// TestHostileIdentifiers_NeverReachTheStore shows, for every entry point that
// takes an identifier, that a malformed one is refused before any lookup,
// insert or schema statement could run.
func TestHostileIdentifiers_NeverReachTheStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	// The store itself: a closed pool fails any statement, so a not_found
	// answer proves no statement was attempted.
	closed, err := sql.Open("pgx", "postgres://nobody@127.0.0.1:1/none?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	store := &tenancy.PGStore{DB: closed}
	if _, err := store.TenantByIdentifier(ctx, "acme"); err == nil || apperr.CodeOf(err) == apperr.NotFound {
		t.Fatalf("control: a valid identifier on a closed pool gave %v, want a database error", err)
	}
	for _, id := range hostileIdentifiers {
		if _, err := store.TenantByIdentifier(ctx, id); apperr.CodeOf(err) != apperr.NotFound {
			t.Errorf("PGStore.TenantByIdentifier(%q) queried the database: %v", id, err)
		}
	}
	for _, key := range []string{"", "tk_", "tk_abcdefgh", "tk_abcdefgh_short", "sk_" + strings.Repeat("a", 50), strings.Repeat("x", 200), "' OR 1=1 --"} {
		if _, err := store.TenantByAPIKey(ctx, key); apperr.CodeOf(err) != apperr.NotFound {
			t.Errorf("PGStore.TenantByAPIKey(%q) queried the database: %v", key, err)
		}
	}

	// Resolvers: malformed values are tenant_not_found without a lookup.
	l := newLookupSpy()
	header := tenancy.HeaderResolver{Header: "X-Tenant-ID", Lookup: l}
	path := tenancy.PathResolver{Prefix: "/t", Lookup: l}
	sub := tenancy.SubdomainResolver{Suffix: ".example.test", Lookup: l}
	for _, id := range hostileIdentifiers {
		if strings.TrimSpace(id) == "" {
			continue
		}
		hr := &http.Request{Header: http.Header{"X-Tenant-Id": {id}}, URL: &url.URL{Path: "/"}}
		pr := &http.Request{Header: http.Header{}, URL: &url.URL{Path: "/t/" + id + "/api/v1/tenant"}}
		sr := &http.Request{Header: http.Header{}, URL: &url.URL{Path: "/"}, Host: id + ".example.test"}
		for name, res := range map[string]func() (*tenancy.Tenant, error){
			"header": func() (*tenancy.Tenant, error) { return header.Resolve(hr) },
			"path":   func() (*tenancy.Tenant, error) { return path.Resolve(pr) },
			"sub":    func() (*tenancy.Tenant, error) { return sub.Resolve(sr) },
		} {
			if strings.ContainsAny(id, "/") && name == "path" {
				continue // splits into another identifier
			}
			tn, err := res()
			if c := apperr.CodeOf(err); tn != nil || (c != apperr.TenantNotFound && !(name == "sub" && c == apperr.MissingCredentials)) {
				t.Errorf("%s %q: %v, %v; want tenant_not_found", name, id, tn, err)
			}
		}
	}
	if u := l.unsafeCalls(); len(u) > 0 {
		t.Errorf("malformed identifiers reached the lookup: %q", u)
	}

	// Lifecycle: validation comes before the registry and the provisioner
	// (both would fail the test if reached).
	reg := &registrySpy{}
	lc := &tenancy.Lifecycle{Registry: reg}
	for _, id := range hostileIdentifiers {
		for _, tier := range []tenancy.Tier{tenancy.TierPremium, tenancy.TierStandard} {
			_, err := lc.Create(ctx, tenancy.NewTenant{Identifier: id, Name: "x", Tier: tier})
			e, ok := apperr.As(err)
			if !ok || e.Code != apperr.ValidationFailed || len(e.Fields) == 0 || e.Fields[0].Field != "identifier" {
				t.Errorf("Lifecycle.Create(%q): %v, want validation_failed on identifier", id, err)
			}
		}
	}
	if reg.calls != 0 {
		t.Errorf("hostile creates reached the registry %d times", reg.calls)
	}
}

type registrySpy struct{ calls int }

func (r *registrySpy) TenantByID(context.Context, uuid.UUID) (*tenancy.Tenant, error) {
	r.calls++
	return nil, errors.New("registry reached")
}

func (r *registrySpy) Create(context.Context, *tenancy.Tenant) error {
	r.calls++
	return errors.New("registry reached")
}

func (r *registrySpy) Update(context.Context, uuid.UUID, tenancy.TenantUpdate) (*tenancy.Tenant, error) {
	r.calls++
	return nil, errors.New("registry reached")
}

func (r *registrySpy) Delete(context.Context, uuid.UUID) error {
	r.calls++
	return errors.New("registry reached")
}

func TestHeaderResolver_ByIDOrIdentifier(t *testing.T) {
	t.Parallel()
	acme := &tenancy.Tenant{ID: uuid.New(), Identifier: "acme", Status: tenancy.StatusActive}
	l := newLookupSpy(acme)
	h := tenancy.HeaderResolver{Header: "X-Tenant-ID", Lookup: l}
	for v, want := range map[string]*tenancy.Tenant{"acme": acme, acme.ID.String(): acme, " acme ": acme, "other": nil, uuid.NewString(): nil} {
		r, _ := http.NewRequest("GET", "/", nil)
		r.Header.Set("X-Tenant-ID", v)
		got, err := h.Resolve(r)
		if got != want || (want == nil && apperr.CodeOf(err) != apperr.TenantNotFound) {
			t.Errorf("header %q: %v, %v", v, got, err)
		}
	}
	l.fail = errors.New("connection reset")
	r, _ := http.NewRequest("GET", "/", nil)
	r.Header.Set("X-Tenant-ID", "acme")
	if _, err := h.Resolve(r); apperr.CodeOf(err) != apperr.Internal {
		t.Errorf("store failure: %v, want it passed on as internal", err)
	}
}

// TestPGStore_RegistryAgainstPostgres exercises the store's lookups and
// writes on a real database as the app role.
func TestPGStore_RegistryAgainstPostgres(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	ctx := context.Background()
	s := &tenancy.PGStore{DB: d.App}
	acme := d.Tenant(t, "acme", tenancy.TierStandard)
	prem := d.Tenant(t, "prem", tenancy.TierPremium)

	for what, f := range map[string]func() (*tenancy.Tenant, error){
		"by id":         func() (*tenancy.Tenant, error) { return s.TenantByID(ctx, acme.ID) },
		"by identifier": func() (*tenancy.Tenant, error) { return s.TenantByIdentifier(ctx, "acme") },
	} {
		got, err := f()
		if err != nil || got.ID != acme.ID || got.Identifier != "acme" || got.Isolation != tenancy.IsolationRLS || !got.Active() {
			t.Errorf("%s: %+v %v", what, got, err)
		}
	}
	if _, err := s.TenantByID(ctx, uuid.New()); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("unknown id: %v", err)
	}
	if _, err := s.TenantByIdentifier(ctx, "nobody"); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("unknown identifier: %v", err)
	}

	k, key, err := s.CreateAPIKey(ctx, prem.ID, "ci")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.TenantByAPIKey(ctx, key); err != nil || got.ID != prem.ID {
		t.Errorf("by api key: %+v %v", got, err)
	}
	for _, partial := range []string{key[:len(key)-1], key[:32], k.Prefix, key + "x", strings.ToUpper(key), " " + key} {
		if _, err := s.TenantByAPIKey(ctx, partial); apperr.CodeOf(err) != apperr.NotFound {
			t.Errorf("partial key %q matched: %v", partial, err)
		}
	}
	if err := s.RevokeAPIKey(ctx, acme.ID, k.ID); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("revoke through another tenant: %v", err)
	}
	if err := s.RevokeAPIKey(ctx, prem.ID, k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TenantByAPIKey(ctx, key); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("revoked key matched: %v", err)
	}
	if _, _, err := s.CreateAPIKey(ctx, uuid.New(), "x"); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("key for unknown tenant: %v", err)
	}

	if err := s.Create(ctx, &tenancy.Tenant{Identifier: "acme", Name: "again", Tier: tenancy.TierStandard, Isolation: tenancy.IsolationRLS}); apperr.CodeOf(err) != apperr.Conflict {
		t.Errorf("duplicate identifier: %v", err)
	}
	for f, want := range map[tenancy.Filter]int{
		{}: 2, {Tier: tenancy.TierPremium}: 1, {Status: tenancy.StatusSuspended}: 0, {Q: "ACM"}: 1, {Q: "%"}: 0, {Q: "_"}: 0,
	} {
		if n, err := s.Count(ctx, f); err != nil || n != want {
			t.Errorf("Count(%+v) = %d, %v; want %d", f, n, err, want)
		}
	}

	got, err := s.MergeMetadata(ctx, acme.ID, json.RawMessage(`{"plan":"gold","seats":3}`))
	if err != nil {
		t.Fatal(err)
	}
	got, err = s.MergeMetadata(ctx, acme.ID, json.RawMessage(`{"seats":5}`))
	var meta map[string]any
	_ = json.Unmarshal(got.Metadata, &meta)
	if err != nil || meta["plan"] != "gold" || meta["seats"] != float64(5) {
		t.Errorf("merged metadata %s %v", got.Metadata, err)
	}
	if got, err := s.SetStatus(ctx, acme.ID, tenancy.StatusSuspended); err != nil || got.Active() {
		t.Errorf("suspend: %+v %v", got, err)
	}
	if _, err := s.SetStatus(ctx, uuid.New(), tenancy.StatusSuspended); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("suspend unknown: %v", err)
	}
	if err := s.Delete(ctx, acme.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, acme.ID); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("delete twice: %v", err)
	}
}

// TestChain_CredentialsProveIdentifiersMustAgree is the resolution matrix
// (invariant 10) over the built-in resolvers, with a lookup spy: with a
// credential in the chain, identifiers alone are refused, and an identifier
// beside a credential must name its tenant, checked without a lookup.
func TestChain_CredentialsProveIdentifiersMustAgree(t *testing.T) {
	t.Parallel()
	acme := &tenancy.Tenant{ID: uuid.New(), Identifier: "acme", Status: tenancy.StatusActive}
	beta := &tenancy.Tenant{ID: uuid.New(), Identifier: "beta", Status: tenancy.StatusActive}
	spy := newLookupSpy(acme, beta)
	secret := []byte("a-jwt-secret-of-at-least-32-bytes-long")
	cfg := tenancy.ResolutionConfig{Strategies: []string{"jwt", "header", "subdomain", "path"}, Header: "X-Tenant-ID",
		DomainSuffix: ".example.test", PathPrefix: "/t",
		JWT: tenancy.JWTConfig{Algorithm: "HS256", Secret: secret, TenantClaim: "tenant_id"}}
	chain, err := tenancy.NewChain(cfg, spy, nil)
	if err != nil {
		t.Fatal(err)
	}
	token := func(tn *tenancy.Tenant) string {
		s, err := tenancy.SignHS("HS256", secret, "tenant_id", tn.ID, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return "Bearer " + s
	}
	cases := []struct {
		name             string
		host, path       string
		header, bearer   string
		want             *tenancy.Tenant
		code             apperr.Code
		identifierLookup bool
	}{
		{"header alone", "", "/api/v1/x", "acme", "", nil, apperr.MissingCredentials, false},
		{"subdomain alone", "acme.example.test", "/api/v1/x", "", "", nil, apperr.MissingCredentials, false},
		{"path alone", "", "/t/acme/api/v1/x", "", "", nil, apperr.MissingCredentials, false},
		{"token alone", "", "/api/v1/x", "", token(acme), acme, "", false},
		{"token and own header", "", "/api/v1/x", "acme", token(acme), acme, "", false},
		{"token and own id in header", "", "/api/v1/x", acme.ID.String(), token(acme), acme, "", false},
		{"token, own subdomain and path", "acme.example.test", "/t/acme/api/v1/x", "", token(acme), acme, "", false},
		{"token and other header", "", "/api/v1/x", "beta", token(acme), nil, apperr.TenantNotFound, false},
		{"token and other subdomain", "beta.example.test", "/api/v1/x", "", token(acme), nil, apperr.TenantNotFound, false},
		{"token and other path", "", "/t/beta/api/v1/x", "", token(acme), nil, apperr.TenantNotFound, false},
		{"token and unknown path", "", "/t/nobody/api/v1/x", "", token(acme), nil, apperr.TenantNotFound, false},
		{"token and malformed header", "", "/api/v1/x", "x;drop", token(acme), nil, apperr.TenantNotFound, false},
		{"own subdomain, other path", "acme.example.test", "/t/beta/api/v1/x", "", token(acme), nil, apperr.TenantNotFound, false},
	}
	for _, c := range cases {
		before := len(spy.calls)
		req, _ := http.NewRequest("GET", "http://api"+c.path, nil)
		if c.host != "" {
			req.Host = c.host
		}
		if c.header != "" {
			req.Header.Set("X-Tenant-ID", c.header)
		}
		if c.bearer != "" {
			req.Header.Set("Authorization", c.bearer)
		}
		got, err := chain.Resolve(req)
		if apperr.CodeOf(err) != c.code || (c.want == nil) != (got == nil) || (got != nil && got.ID != c.want.ID) {
			t.Errorf("%s: got %v, %v; want %v, %q", c.name, got, err, c.want, c.code)
		}
		for _, call := range spy.calls[before:] {
			if !strings.HasPrefix(call, "id:") {
				t.Errorf("%s: identifier looked up (%s): agreement needs no lookup", c.name, call)
			}
		}
	}

	// Identifiers only: refused unless allowed; allowed, the first present decides.
	cfg.Strategies = []string{"header", "path"}
	if _, err := tenancy.NewChain(cfg, spy, nil); !errors.Is(err, tenancy.ErrUnauthenticatedChain) {
		t.Fatalf("identifier-only chain: %v", err)
	}
	cfg.AllowUnauthenticated = true
	open, err := tenancy.NewChain(cfg, spy, nil)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", "http://api/t/beta/api/v1/x", nil)
	req.Header.Set("X-Tenant-ID", "acme")
	if got, err := open.Resolve(req); err != nil || got.ID != acme.ID {
		t.Errorf("identifier-only chain: %v, %v; want the first identifier's tenant", got, err)
	}
	if tenancy.KindOf(tenancy.ResolverFunc(nil)) != tenancy.KindIdentifier || tenancy.KindOf(tenancy.AsCredential(tenancy.ResolverFunc(nil))) != tenancy.KindCredential {
		t.Error("undeclared resolvers must be identifiers; AsCredential declares a credential")
	}
}
