package tenancy_test

import (
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/your-org/tenantkit/internal/config"
	"github.com/your-org/tenantkit/internal/tenancy"
)

// placementFrom loads the placement cmd/api would use from env.
func placementFrom(t *testing.T, env map[string]string) tenancy.Placement {
	t.Helper()
	cfg, err := config.Load(func(k string) string {
		if k == "JWT_SECRET" {
			return "placement-test-secret-placement-test-secret"
		}
		return env[k]
	}, config.API)
	if err != nil {
		t.Fatalf("config %v: %v", env, err)
	}
	return cfg.Placement
}

// The reference library's hybrid test, in Go: a premium tenant gets the
// schema provider, a standard one RLS, PREMIUM_TENANT_IDS forces premium, and
// a single strategy overrides the tiers.
func TestPlacement_HybridPlacesByTierAndPremiumIDs(t *testing.T) {
	t.Parallel()
	forced, other := uuid.New(), uuid.New()
	premiumIDs := " " + forced.String() + " , " + uuid.NewString()
	cases := []struct {
		name string
		env  map[string]string
		id   uuid.UUID
		tier tenancy.Tier
		want tenancy.Isolation
	}{
		{"default premium", nil, other, tenancy.TierPremium, tenancy.IsolationSchema},
		{"default standard", nil, other, tenancy.TierStandard, tenancy.IsolationRLS},
		{"hybrid premium", map[string]string{"TENANCY_ISOLATION_STRATEGY": "hybrid"}, other, tenancy.TierPremium, tenancy.IsolationSchema},
		{"hybrid standard", map[string]string{"TENANCY_ISOLATION_STRATEGY": "hybrid"}, other, tenancy.TierStandard, tenancy.IsolationRLS},
		{"listed standard forced premium", map[string]string{"PREMIUM_TENANT_IDS": premiumIDs}, forced, tenancy.TierStandard, tenancy.IsolationSchema},
		{"unlisted standard", map[string]string{"PREMIUM_TENANT_IDS": premiumIDs}, other, tenancy.TierStandard, tenancy.IsolationRLS},
		{"schema strategy standard", map[string]string{"TENANCY_ISOLATION_STRATEGY": "schema"}, other, tenancy.TierStandard, tenancy.IsolationSchema},
		{"rls strategy premium", map[string]string{"TENANCY_ISOLATION_STRATEGY": "rls"}, other, tenancy.TierPremium, tenancy.IsolationRLS},
		{"rls strategy beats premium ids", map[string]string{"TENANCY_ISOLATION_STRATEGY": "rls", "PREMIUM_TENANT_IDS": premiumIDs}, forced, tenancy.TierStandard, tenancy.IsolationRLS},
		{"premium tier strategy rls", map[string]string{"TENANCY_PREMIUM_ISOLATION_STRATEGY": "rls"}, other, tenancy.TierPremium, tenancy.IsolationRLS},
		{"standard tier strategy schema", map[string]string{"TENANCY_STANDARD_ISOLATION_STRATEGY": "schema"}, other, tenancy.TierStandard, tenancy.IsolationSchema},
	}
	for _, c := range cases {
		got := placementFrom(t, c.env).Place(c.id, c.tier)
		if got != c.want {
			t.Errorf("%s: placed %s, want %s", c.name, got, c.want)
		}
		// What the placement means for storage: its own schema, or public under RLS.
		tn := &tenancy.Tenant{ID: c.id, Identifier: "acme-corp", Tier: c.tier, Isolation: got}
		wantSchema := "public"
		if got == tenancy.IsolationSchema {
			wantSchema = "tenant_acme_corp"
		}
		if tn.Schema() != wantSchema {
			t.Errorf("%s: schema %q, want %q", c.name, tn.Schema(), wantSchema)
		}
	}
}

func TestPlacement_ZeroValueIsHybrid(t *testing.T) {
	t.Parallel()
	var p tenancy.Placement
	if got := p.Place(uuid.New(), tenancy.TierPremium); got != tenancy.IsolationSchema {
		t.Errorf("premium: %s", got)
	}
	if got := p.Place(uuid.New(), tenancy.TierStandard); got != tenancy.IsolationRLS {
		t.Errorf("standard: %s", got)
	}
}

func TestPlacement_BadConfigurationIsRefused(t *testing.T) {
	t.Parallel()
	for env, want := range map[string]string{
		"PREMIUM_TENANT_IDS=not-a-uuid":          "PREMIUM_TENANT_IDS",
		"TENANCY_ISOLATION_STRATEGY=database":    "TENANCY_ISOLATION_STRATEGY",
		"TENANCY_PREMIUM_ISOLATION_STRATEGY=x":   "TENANCY_PREMIUM_ISOLATION_STRATEGY",
		"TENANCY_STANDARD_ISOLATION_STRATEGY=ho": "TENANCY_STANDARD_ISOLATION_STRATEGY",
	} {
		k, v, _ := strings.Cut(env, "=")
		_, err := config.Load(func(name string) string {
			switch name {
			case k:
				return v
			case "JWT_SECRET":
				return "placement-test-secret-placement-test-secret"
			}
			return ""
		}, config.API)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error naming %s", env, err, want)
		}
	}
}
