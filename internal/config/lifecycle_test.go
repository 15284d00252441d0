package config_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/your-org/tenantkit/internal/config"
	"github.com/your-org/tenantkit/internal/tenancy"
)

func TestLoad_LifecycleVariables(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, map[string]string{"JWT_SECRET": goodSecret}, config.API)
	if c.AutoMove || c.TierRule != nil || c.AdminActorHeader != "" {
		t.Errorf("defaults: auto move %v, rule %v, actor header %q; want off, none, none", c.AutoMove, c.TierRule, c.AdminActorHeader)
	}
	c = mustLoad(t, map[string]string{"JWT_SECRET": goodSecret, "TENANCY_AUTO_MOVE": "true",
		"TENANCY_PREMIUM_RULE": "plan=enterprise", "ADMIN_ACTOR_HEADER": "X-Admin-Actor"}, config.API)
	if !c.AutoMove || c.TierRule == nil || *c.TierRule != (tenancy.TierRule{Key: "plan", Value: "enterprise"}) || c.AdminActorHeader != "X-Admin-Actor" {
		t.Errorf("set: %+v %+v %q", c.AutoMove, c.TierRule, c.AdminActorHeader)
	}
	if tier := c.TierRule.TierOf(json.RawMessage(`{"plan":"enterprise"}`)); tier == nil || *tier != tenancy.TierPremium {
		t.Errorf("plan=enterprise gives %v, want premium", tier)
	}
	if tier := c.TierRule.TierOf(json.RawMessage(`{"plan":"free"}`)); tier == nil || *tier != tenancy.TierStandard {
		t.Errorf("plan=free gives %v, want standard", tier)
	}
	if tier := c.TierRule.TierOf(json.RawMessage(`{"color":"red"}`)); tier != nil {
		t.Errorf("metadata without the key gives %v, want no tier change", *tier)
	}
	_, err := config.Load(env(map[string]string{"JWT_SECRET": goodSecret, "TENANCY_PREMIUM_RULE": "enterprise"}), config.API)
	if err == nil || !strings.Contains(err.Error(), "TENANCY_PREMIUM_RULE") {
		t.Errorf("malformed rule: %v, want a TENANCY_PREMIUM_RULE problem", err)
	}
}
