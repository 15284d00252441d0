package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/migrations"
)

// PoolsConfig is what OpenPools needs from a binary.
type PoolsConfig struct {
	Cells  []tenancy.Cell
	Pool   tenancy.PoolConfig
	Budget tenancy.Budget
	// Check refuses a cell whose app role or isolation is unsafe (CheckAppRole
	// and the isolation check, run by the binary).
	Check    func(ctx context.Context, cell tenancy.Cell, pools *tenancy.Pools) error
	Registry *prometheus.Registry
	Log      *slog.Logger
}

// OpenPools opens the app role's pools of every cell (docs/scaling.md,
// "Cells") and checks each. The default cell holds the control plane and
// must pass; another cell that is down only logs (its tenants get 503 until
// it answers, docs/scaling.md) while one that answers must pass too.
func OpenPools(ctx context.Context, c PoolsConfig) (*tenancy.Pools, error) {
	pools, err := tenancy.OpenPools(tenancy.PoolsConfig{Cells: c.Cells, Pool: c.Pool, Budget: c.Budget})
	if err != nil {
		return nil, err
	}
	for _, cell := range c.Cells {
		err := c.Check(ctx, cell, pools)
		if err != nil && cell.Name != tenancy.DefaultCell && tenancy.IsUnavailable(err) {
			c.Log.Warn("cell is unavailable at start-up: its tenants get 503 until it answers", "cell", cell.Name, "err", err)
			continue
		}
		if err != nil {
			pools.Close()
			return nil, fmt.Errorf("cell %s: %w", cell.Name, err)
		}
	}
	if c.Registry != nil {
		for _, cell := range c.Cells {
			name := "app"
			if cell.Name != tenancy.DefaultCell {
				name += "_" + cell.Name
			}
			c.Registry.MustRegister(collectors.NewDBStatsCollector(pools.Cell(cell.Name), name))
		}
	}
	return pools, nil
}

// CheckCell refuses a cell whose app role could escape isolation or where a
// tenant statement could reach rows without the isolation policy (invariants
// 3 and 12): the role check, then the catalog check (and the behavioural
// probe when the role may run it) as the app role, rolled back. api and
// worker pass it as PoolsConfig.Check.
func CheckCell(ctx context.Context, cell tenancy.Cell, pools *tenancy.Pools) error {
	if err := tenancy.CheckAppRole(ctx, pools.Cell(cell.Name)); err != nil {
		return err
	}
	decl, err := tenancy.ParseDeclarations(migrations.Tenant())
	if err != nil {
		return err
	}
	return tenancy.CheckIsolation(ctx, tenancy.IsolationCheck{DSN: cell.AppDSN, Declarations: decl})
}
