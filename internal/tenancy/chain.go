package tenancy

import "fmt"

// ResolutionConfig selects and configures the resolution strategies.
type ResolutionConfig struct {
	Strategies   []string // in chain order: jwt, header, subdomain, path, api_key, or a custom name
	Header       string
	DomainSuffix string
	PathPrefix   string
	Proxies      TrustedProxies
	JWT          JWTConfig
}

// NewChain builds the resolver chain; custom resolvers are found by name.
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
