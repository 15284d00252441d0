package tenancy

import (
	"encoding/json"
	"fmt"
	"strings"
)

// TierRule derives the tier from a metadata field, as the reference
// library's database-driven premium set does: with Key "plan" and Value
// "enterprise", a metadata update that sets plan to "enterprise" makes the
// tenant premium, one that sets it to anything else makes it standard.
type TierRule struct {
	Key   string
	Value string
}

// ParseTierRule parses TENANCY_PREMIUM_RULE, "key=value"; "" is no rule.
func ParseTierRule(s string) (*TierRule, error) {
	if s == "" {
		return nil, nil
	}
	k, v, ok := strings.Cut(s, "=")
	if !ok || strings.TrimSpace(k) == "" || strings.TrimSpace(v) == "" {
		return nil, fmt.Errorf("TENANCY_PREMIUM_RULE must be key=value, e.g. plan=enterprise")
	}
	return &TierRule{Key: strings.TrimSpace(k), Value: strings.TrimSpace(v)}, nil
}

// TierOf returns the tier a metadata update implies, or nil when the update
// does not set the rule's key.
func (r *TierRule) TierOf(update json.RawMessage) *Tier {
	if r == nil || len(update) == 0 {
		return nil
	}
	var m map[string]any
	if json.Unmarshal(update, &m) != nil {
		return nil
	}
	v, ok := m[r.Key]
	if !ok {
		return nil
	}
	tier := TierStandard
	if s, ok := v.(string); ok && s == r.Value {
		tier = TierPremium
	}
	return &tier
}
