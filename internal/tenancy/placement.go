package tenancy

import "github.com/google/uuid"

// Placement decides, at provisioning, where a tenant's rows live. The decision
// is stored with the tenant, so changing configuration never moves data.
type Placement struct {
	Strategy   Isolation // TENANCY_ISOLATION_STRATEGY: schema, rls, or "" for hybrid
	Premium    Isolation // TENANCY_PREMIUM_ISOLATION_STRATEGY (hybrid)
	Standard   Isolation // TENANCY_STANDARD_ISOLATION_STRATEGY (hybrid)
	PremiumIDs map[uuid.UUID]bool
}

// Hybrid is the Strategy value that places by tier.
const Hybrid Isolation = "hybrid"

// Place returns the isolation for a tenant of the given tier and id.
func (p Placement) Place(id uuid.UUID, tier Tier) Isolation {
	if p.Strategy == IsolationSchema || p.Strategy == IsolationRLS {
		return p.Strategy
	}
	if tier == TierPremium || p.PremiumIDs[id] {
		return or(p.Premium, IsolationSchema)
	}
	return or(p.Standard, IsolationRLS)
}

func or(v, def Isolation) Isolation {
	if v == "" {
		return def
	}
	return v
}
