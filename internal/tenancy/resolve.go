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

// Chain resolves a request through its strategies. Credentials (jwt,
// api_key) prove, identifiers (header, subdomain, path) name:
//   - with a credential strategy in the chain, the first credential present
//     decides and one is required (missing_credentials otherwise); every
//     identifier the request also carries must name that same tenant, or
//     the request gets the uniform tenant_not_found;
//   - with identifiers only (TENANCY_ALLOW_UNAUTHENTICATED), the first
//     identifier present decides.
type Chain []Resolver

// Authenticates reports whether the chain holds a credential strategy.
func (c Chain) Authenticates() bool {
	for _, res := range c {
		if KindOf(res) == KindCredential {
			return true
		}
	}
	return false
}

func (c Chain) Resolve(r *http.Request) (*Tenant, error) {
	if !c.Authenticates() {
		return c.first(r, KindIdentifier)
	}
	t, err := c.first(r, KindCredential)
	if err != nil || t == nil {
		return t, err
	}
	for _, res := range c {
		if KindOf(res) != KindIdentifier {
			continue
		}
		if err := agrees(r, res, t); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// first returns the answer of the first resolver of kind k whose input is present.
func (c Chain) first(r *http.Request, k Kind) (*Tenant, error) {
	for _, res := range c {
		if KindOf(res) != k {
			continue
		}
		t, err := res.Resolve(r)
		if apperr.CodeOf(err) == apperr.MissingCredentials {
			continue
		}
		return t, err
	}
	return nil, ErrNoCredential
}

// agrees checks that the identifier res reads, if the request carries one,
// names t. It answers tenant_not_found either way, so that a caller learns
// neither whether the named tenant exists nor which part disagreed.
func agrees(r *http.Request, res Resolver, t *Tenant) error {
	if n, ok := res.(Namer); ok {
		v, present := n.Name(r)
		if present && !names(v, t) {
			return errTenantNotFound()
		}
		return nil
	}
	named, err := res.Resolve(r)
	switch {
	case apperr.CodeOf(err) == apperr.MissingCredentials:
		return nil
	case err != nil && apperr.CodeOf(err) != apperr.NotFound && apperr.CodeOf(err) != apperr.TenantNotFound:
		return err // the registry failed: not the client's fault
	case err != nil || named == nil || named.ID != t.ID:
		return errTenantNotFound()
	}
	return nil
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
	label, ok := s.label(r)
	if !ok {
		return nil, ErrNoCredential
	}
	if strings.Contains(label, ".") || !ValidIdentifier(label) {
		return nil, errTenantNotFound()
	}
	return byIDOrIdentifier(r.Context(), s.Lookup, label)
}

// label is the part of the host before Suffix, if the host ends in it.
func (s SubdomainResolver) label(r *http.Request) (string, bool) {
	host := r.Host
	if fh := r.Header.Get("X-Forwarded-Host"); fh != "" && s.Proxies.Trusts(r.RemoteAddr) {
		host, _, _ = strings.Cut(fh, ",")
	}
	host = strings.ToLower(strings.TrimSpace(host))
	if h, _, ok := strings.Cut(host, ":"); ok {
		host = h
	}
	label, ok := strings.CutSuffix(host, strings.ToLower(s.Suffix))
	return label, ok && label != ""
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
