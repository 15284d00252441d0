package tenancy

import (
	"net/http"
	"strings"

	"github.com/google/uuid"
)

// Kind says what a resolution strategy establishes about a request.
type Kind int

const (
	// KindIdentifier names a tenant (header, subdomain, path): anyone can
	// send it, so it proves nothing about the caller.
	KindIdentifier Kind = iota
	// KindCredential proves the caller may act for a tenant (jwt, api_key).
	KindCredential
)

// Kinded is implemented by resolvers that declare their kind. A resolver
// that does not is an identifier: the chain fails closed.
type Kinded interface {
	Kind() Kind
}

// KindOf returns r's declared kind, KindIdentifier when undeclared.
func KindOf(r Resolver) Kind {
	if k, ok := r.(Kinded); ok {
		return k.Kind()
	}
	return KindIdentifier
}

// AsCredential declares a custom resolver a credential strategy: use it only
// for resolvers that verify a secret (a session cookie, an mTLS client
// certificate), never for one that reads a name.
func AsCredential(r Resolver) Resolver { return kinded{Resolver: r, kind: KindCredential} }

type kinded struct {
	Resolver
	kind Kind
}

func (k kinded) Kind() Kind { return k.kind }

// Namer is implemented by identifier resolvers that can tell the name a
// request carries without looking it up: the chain then checks it against
// the credential's tenant without a registry round trip.
type Namer interface {
	// Name returns the identifier or id the request names, and whether it names one.
	Name(r *http.Request) (string, bool)
}

// names reports whether the identifier or id v names t.
func names(v string, t *Tenant) bool {
	if v == t.Identifier {
		return true
	}
	id, err := uuid.Parse(v)
	return err == nil && len(v) == 36 && id == t.ID
}

func (JWTResolver) Kind() Kind       { return KindCredential }
func (APIKeyResolver) Kind() Kind    { return KindCredential }
func (HeaderResolver) Kind() Kind    { return KindIdentifier }
func (SubdomainResolver) Kind() Kind { return KindIdentifier }
func (PathResolver) Kind() Kind      { return KindIdentifier }

func (h HeaderResolver) Name(r *http.Request) (string, bool) {
	v := strings.TrimSpace(r.Header.Get(h.Header))
	return v, v != ""
}

func (p PathResolver) Name(r *http.Request) (string, bool) {
	id, _, ok := SplitTenantPath(p.Prefix, r.URL.Path)
	return id, ok
}

func (s SubdomainResolver) Name(r *http.Request) (string, bool) {
	label, ok := s.label(r)
	return label, ok
}
