package tenancy

import (
	"net/http"
	"net/netip"
	"strings"

	"github.com/your-org/tenantkit/internal/apperr"
)

// Middleware binds each request to its tenant. It is plain net/http so that
// any router can adapt it; internal/http holds the Echo adapter.
type Middleware struct {
	Resolver Resolver
	// Skip lists path prefixes that are never tenant-resolved; they match
	// whole segments, so "/health" skips "/health" and "/health/x", not "/healthz".
	Skip []string
	// PathPrefix, when the path strategy is in use, is stripped together with
	// the identifier ("/t/acme/api/v1/x" is routed as "/api/v1/x").
	PathPrefix string
	// Failures, when set, throttles failed credential attempts per client
	// address (as Proxies tell it) before any registry lookup.
	Failures *FailureThrottle
	Proxies  TrustedProxies
}

// Skips reports whether the request is not tenant-resolved.
func (m *Middleware) Skips(r *http.Request) bool {
	if r.Method == http.MethodOptions {
		return true // CORS preflights carry no credentials
	}
	return MatchesSegmentPrefix(r.URL.Path, m.Skip)
}

// MatchesSegmentPrefix reports whether path equals a prefix or continues it
// with a "/".
func MatchesSegmentPrefix(path string, prefixes []string) bool {
	for _, p := range prefixes {
		p = strings.TrimSuffix(p, "/")
		if path == p || strings.HasPrefix(path, p+"/") {
			return true
		}
	}
	return false
}

// Bind resolves r's tenant and returns r bound to it. A tenant that exists
// but is not active is refused with tenant_suspended.
func (m *Middleware) Bind(r *http.Request) (*http.Request, error) {
	var client netip.Addr
	if m.Failures != nil {
		client = m.Proxies.ClientIP(r)
		if wait := m.Failures.Wait(client); wait > 0 {
			return nil, apperr.Throttled(wait, "too many failed credential attempts from this address, retry later")
		}
	}
	t, err := m.Resolver.Resolve(r)
	if err != nil {
		// A custom resolver may hand on the store's not_found as is; to
		// clients it is the contract's tenant_not_found all the same.
		err = notFoundAs(err, errTenantNotFound)
		if c := apperr.CodeOf(err); m.Failures != nil && (c == apperr.InvalidCredentials || c == apperr.TenantNotFound) {
			m.Failures.Failed(client)
		}
		return nil, err
	}
	if t == nil {
		return nil, errTenantNotFound()
	}
	if !t.Active() {
		return nil, apperr.New(apperr.TenantSuspended, "tenant %s is %s", t.Identifier, t.Status)
	}
	r = r.WithContext(WithTenant(r.Context(), t))
	if m.PathPrefix != "" {
		// Strip only a prefix naming this tenant: when another strategy of
		// the chain decided, /t/{other}/... must not serve this tenant's data.
		if seg, rest, ok := SplitTenantPath(m.PathPrefix, r.URL.Path); ok && (seg == t.Identifier || strings.EqualFold(seg, t.ID.String())) {
			u := *r.URL
			u.Path, u.RawPath = rest, ""
			r.URL = &u
		}
	}
	return r, nil
}

// Handler wraps next; onError writes the response for a refused request.
func (m *Middleware) Handler(next http.Handler, onError func(http.ResponseWriter, *http.Request, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m.Skips(r) {
			next.ServeHTTP(w, r)
			return
		}
		bound, err := m.Bind(r)
		if err != nil {
			onError(w, r, err)
			return
		}
		next.ServeHTTP(w, bound)
	})
}
