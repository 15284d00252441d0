package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/your-org/tenantkit/internal/apperr"
	"github.com/your-org/tenantkit/internal/tenancy"
)

// demo creates (or finds) one premium and one standard tenant and prints a
// curl per tenant with a 24 h token signed with JWT_SECRET.
func (m *migration) demo(ctx context.Context, getenv func(string) string) error {
	secret := getenv("JWT_SECRET")
	if len(secret) < 32 {
		return fmt.Errorf("demo needs JWT_SECRET (at least 32 bytes) to sign tokens")
	}
	store := &tenancy.PGStore{DB: m.owner}
	life := &tenancy.Lifecycle{Registry: store, Placement: m.cfg.Placement,
		Provisioner: &tenancy.Provisioner{Migrator: m.migrator, Owner: m.owner}}
	addr := m.cfg.HTTPAddr
	if strings.HasPrefix(addr, ":") {
		addr = "localhost" + addr
	}
	alg := m.cfg.Resolution.JWT.Algorithm
	if !strings.HasPrefix(alg, "HS") {
		alg = "HS256"
	}
	for _, d := range []tenancy.NewTenant{
		{Identifier: "acme", Name: "Acme Corp (demo, premium)", Tier: tenancy.TierPremium},
		{Identifier: "globex", Name: "Globex (demo, standard)", Tier: tenancy.TierStandard},
	} {
		t, err := life.Create(ctx, d)
		if apperr.CodeOf(err) == apperr.Conflict {
			t, err = store.TenantByIdentifier(ctx, d.Identifier)
		}
		if err != nil {
			return fmt.Errorf("demo tenant %s: %w", d.Identifier, err)
		}
		token, err := tenancy.SignHS(alg, []byte(secret), m.cfg.Resolution.JWT.TenantClaim, t.ID, 24*time.Hour)
		if err != nil {
			return err
		}
		fmt.Fprintf(m.cli.stdout, "\n# %s — %s tenant, isolation %s\nexport TOKEN_%s=%s\n", t.Name, t.Tier, t.Isolation, strings.ToUpper(t.Identifier), token)
		fmt.Fprintf(m.cli.stdout, "curl -s -X POST http://%s/api/v1/projects -H \"Authorization: Bearer $TOKEN_%s\" -H 'Content-Type: application/json' -d '{\"name\":\"First project\"}'\n", addr, strings.ToUpper(t.Identifier))
		fmt.Fprintf(m.cli.stdout, "curl -s http://%s/api/v1/projects -H \"Authorization: Bearer $TOKEN_%s\"\n", addr, strings.ToUpper(t.Identifier))
	}
	return nil
}
