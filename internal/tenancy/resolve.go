package tenancy

import (
	"context"
	"net/http"
	"net/netip"
	"strings"

	"github.com/google/uuid"

	"github.com/your-org/tenantkit/internal/apperr"
)

// Resolver finds the tenant a request is for. When the request carries none
// of the resolver's credential it returns an error with code
// missing_credentials, so that a Chain moves on to the next resolver; any
// other error decides the request. Implement it to add a custom strategy.
type Resolver interface {
	Resolve(r *http.Request) (*Tenant, error)
}

// ResolverFunc adapts a function to Resolver.
type ResolverFunc func(r *http.Request) (*Tenant, error)

func (f ResolverFunc) Resolve(r *http.Request) (*Tenant, error) { return f(r) }

// ErrNoCredential is returned by a resolver whose credential is absent.
var ErrNoCredential = apperr.New(apperr.MissingCredentials, "no tenant credential in request")

func errTenantNotFound() error { return apperr.New(apperr.TenantNotFound, "tenant not found") }

// Chain tries resolvers in order; the first whose credential is present decides.
type Chain []Resolver

func (c Chain) Resolve(r *http.Request) (*Tenant, error) {
	for _, res := range c {
		t, err := res.Resolve(r)
		if apperr.CodeOf(err) == apperr.MissingCredentials {
			continue
		}
		return t, err
	}
	return nil, ErrNoCredential
}

// byIDOrIdentifier looks up a tenant by UUID or identifier; anything else,
// or no such tenant, is tenant_not_found (the same answer either way).
func byIDOrIdentifier(ctx context.Context, l Lookup, v string) (*Tenant, error) {
	var (
		t   *Tenant
		err error
	)
	if id, perr := uuid.Parse(v); perr == nil && len(v) == 36 {
		t, err = l.TenantByID(ctx, id)
	} else if ValidIdentifier(v) {
		t, err = l.TenantByIdentifier(ctx, v)
	} else {
		return nil, errTenantNotFound()
	}
	return t, notFoundAs(err, errTenantNotFound)
}

// notFoundAs turns the store's not_found into the resolution error of the caller.
func notFoundAs(err error, as func() error) error {
	if apperr.CodeOf(err) == apperr.NotFound {
		return as()
	}
	return err
}

// HeaderResolver reads a tenant id or identifier from a header (X-Tenant-ID).
type HeaderResolver struct {
	Header string
	Lookup Lookup
}

func (h HeaderResolver) Resolve(r *http.Request) (*Tenant, error) {
	v := strings.TrimSpace(r.Header.Get(h.Header))
	if v == "" {
		return nil, ErrNoCredential
	}
	return byIDOrIdentifier(r.Context(), h.Lookup, v)
}

// APIKeyResolver reads X-API-Key and finds the tenant by the key's hash.
type APIKeyResolver struct {
	Lookup Lookup
}

// APIKeyHeader carries API keys.
const APIKeyHeader = "X-API-Key"

func (a APIKeyResolver) Resolve(r *http.Request) (*Tenant, error) {
	key := strings.TrimSpace(r.Header.Get(APIKeyHeader))
	if key == "" {
		return nil, ErrNoCredential
	}
	t, err := a.Lookup.TenantByAPIKey(r.Context(), key)
	return t, notFoundAs(err, func() error {
		return apperr.New(apperr.InvalidCredentials, "API key is invalid or revoked")
	})
}

// PathResolver reads the identifier from /{prefix}/{identifier}/...; the
// middleware strips that part so routes see /api/v1/....
type PathResolver struct {
	Prefix string // "/t"
	Lookup Lookup
}

// SplitTenantPath splits /prefix/{identifier}/rest into identifier and /rest.
func SplitTenantPath(prefix, path string) (identifier, rest string, ok bool) {
	tail, found := strings.CutPrefix(path, strings.TrimSuffix(prefix, "/")+"/")
	if !found {
		return "", "", false
	}
	identifier, rest, _ = strings.Cut(tail, "/")
	if identifier == "" {
		return "", "", false
	}
	return identifier, "/" + rest, true
}

func (p PathResolver) Resolve(r *http.Request) (*Tenant, error) {
	id, _, ok := SplitTenantPath(p.Prefix, r.URL.Path)
	if !ok {
		return nil, ErrNoCredential
	}
	return byIDOrIdentifier(r.Context(), p.Lookup, id)
}

// SubdomainResolver reads the identifier from {identifier}{Suffix}, taking the
// host from X-Forwarded-Host only when the peer is a trusted proxy.
type SubdomainResolver struct {
	Suffix  string // ".example.com"
	Proxies TrustedProxies
	Lookup  Lookup
}

func (s SubdomainResolver) Resolve(r *http.Request) (*Tenant, error) {
	host := r.Host
	if fh := r.Header.Get("X-Forwarded-Host"); fh != "" && s.Proxies.Trusts(r.RemoteAddr) {
		host, _, _ = strings.Cut(fh, ",")
	}
	host = strings.ToLower(strings.TrimSpace(host))
	if h, _, ok := strings.Cut(host, ":"); ok {
		host = h
	}
	label, ok := strings.CutSuffix(host, strings.ToLower(s.Suffix))
	if !ok || label == "" {
		return nil, ErrNoCredential
	}
	if strings.Contains(label, ".") || !ValidIdentifier(label) {
		return nil, errTenantNotFound()
	}
	return byIDOrIdentifier(r.Context(), s.Lookup, label)
}

// TrustedProxies are the networks whose forwarding headers are believed.
type TrustedProxies []netip.Prefix

// Trusts reports whether remoteAddr (host:port) is inside a trusted network.
func (p TrustedProxies) Trusts(remoteAddr string) bool {
	if len(p) == 0 {
		return false
	}
	ap, err := netip.ParseAddrPort(remoteAddr)
	var addr netip.Addr
	if err == nil {
		addr = ap.Addr()
	} else if addr, err = netip.ParseAddr(remoteAddr); err != nil {
		return false
	}
	addr = addr.Unmap()
	for _, n := range p {
		if n.Contains(addr) {
			return true
		}
	}
	return false
}
