package tenancy

import (
	"fmt"
	"strings"
)

// ResolutionConfig selects and configures the resolution strategies.
type ResolutionConfig struct {
	Strategies   []string // in chain order: jwt, header, subdomain, path, api_key, or a custom name
	Header       string
	DomainSuffix string
	PathPrefix   string
	Proxies      TrustedProxies
	JWT          JWTConfig
	// AllowUnauthenticated lets a chain of identifier strategies only start
	// (TENANCY_ALLOW_UNAUTHENTICATED): for deployments behind a gateway that
	// authenticates callers and sets the identifier itself.
	AllowUnauthenticated bool
}

// ErrUnauthenticatedChain is returned by NewChain for a chain that could
// only identify tenants, never authenticate callers.
var ErrUnauthenticatedChain = fmt.Errorf("resolution chain has no credential strategy (jwt, api_key): " +
	"anyone who can reach the api could act as any tenant; add one, or set TENANCY_ALLOW_UNAUTHENTICATED=true " +
	"only behind a gateway that authenticates callers and sets the tenant itself")

// NewChain builds the resolver chain; custom resolvers are found by name and
// count as identifiers unless they declare otherwise (see AsCredential). A
// chain without a credential strategy is refused unless
// cfg.AllowUnauthenticated.
func NewChain(cfg ResolutionConfig, l Lookup, custom map[string]Resolver) (Chain, error) {
	var chain Chain
	for _, s := range cfg.Strategies {
		switch s {
		case "jwt":
			j, err := NewJWTResolver(cfg.JWT, l)
			if err != nil {
				return nil, err
			}
			chain = append(chain, j)
		case "header":
			chain = append(chain, HeaderResolver{Header: cfg.Header, Lookup: l})
		case "subdomain":
			chain = append(chain, SubdomainResolver{Suffix: cfg.DomainSuffix, Proxies: cfg.Proxies, Lookup: l})
		case "path":
			chain = append(chain, PathResolver{Prefix: cfg.PathPrefix, Lookup: l})
		case "api_key":
			chain = append(chain, APIKeyResolver{Lookup: l})
		default:
			r, ok := custom[s]
			if !ok {
				return nil, fmt.Errorf("unknown resolution strategy %q", s)
			}
			chain = append(chain, r)
		}
	}
	if len(chain) == 0 {
		return nil, fmt.Errorf("no resolution strategy configured")
	}
	if !chain.Authenticates() && !cfg.AllowUnauthenticated {
		return nil, fmt.Errorf("%w (chain: %s)", ErrUnauthenticatedChain, strings.Join(cfg.Strategies, ","))
	}
	return chain, nil
}

// UsesPath reports whether the path strategy is in the chain.
func (c ResolutionConfig) UsesPath() bool {
	for _, s := range c.Strategies {
		if s == "path" {
			return true
		}
	}
	return false
}
