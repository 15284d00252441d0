package main

import (
	"database/sql"
	"fmt"
	"log/slog"

	"github.com/your-org/tenantkit/internal/config"
	"github.com/your-org/tenantkit/internal/tasks"
	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/tenantmove"
	"github.com/your-org/tenantkit/migrations"
)

// registerMoves lets this worker run online tenant moves (task
// tenant:move, control-plane work without a tenant binding). Moves create
// and drop schemas and install write fences, so they work as the owner role
// (MIGRATE_DATABASE_URL) on a small pool of their own. lookup, when it is
// the cached store, makes every process follow the flipped placement.
func registerMoves(cfg config.Config, w *tasks.Worker, lookup tenancy.Lookup, log *slog.Logger) (closeOwner func(), err error) {
	owner, err := sql.Open("pgx", cfg.MigrateDatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("open owner pool for moves: %w", err)
	}
	owner.SetMaxOpenConns(3)
	role, _ := cfg.AppRole()
	m := &tenantmove.Mover{Owner: owner, Log: log, Provisioner: &tenancy.Provisioner{Owner: owner, Migrator: &tenancy.Migrator{
		OwnerDSN: cfg.MigrateDatabaseURL, AppRole: role, Control: migrations.Control(), Tenant: migrations.Tenant(), Log: log}}}
	if r, ok := lookup.(tenantmove.Refresher); ok {
		m.Refresh = r
	}
	w.Middleware.Unscoped[tenantmove.TaskType] = true
	w.Mux.HandleFunc(tenantmove.TaskType, m.HandleTask)
	return func() { owner.Close() }, nil
}
