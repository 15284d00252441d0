package tenancy_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/google/uuid"

	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/testenv"
)

// More database tenants than the budget allows pools: each is still served
// from its own database, and no more tenant-database pools than the budget
// are ever open (the least recently used idle one is closed).
func TestPools_DatabaseTenantsStayWithinTheBudget(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	ctx := context.Background()
	var tenants []*tenancy.Tenant
	for i := range 3 {
		tenants = append(tenants, d.Place(t, fmt.Sprintf("lru-%d", i), tenancy.IsolationDatabase, tenancy.DefaultCell))
	}
	pools, err := tenancy.OpenPools(tenancy.PoolsConfig{Cells: d.Cells(), Pool: tenancy.PoolConfig{MaxIdle: 2},
		Budget: tenancy.Budget{MaxConnections: 6, DatabasePool: 2, MaxDatabases: 2}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pools.Close() })
	for round := range 3 {
		for _, tn := range tenants {
			tctx := tenancy.WithTenant(ctx, tn)
			if _, err := pools.ExecContext(tctx, `INSERT INTO projects (id, tenant_id, name) VALUES ($1, $2, 'p')`, uuid.New(), tn.ID); err != nil {
				t.Fatalf("round %d, %s: %v", round, tn.Identifier, err)
			}
			var db string
			var n int
			if err := pools.QueryRowContext(tctx, `SELECT current_database(), (SELECT count(*) FROM projects)`).Scan(&db, &n); err != nil {
				t.Fatal(err)
			}
			if db != tenancy.DatabaseName(d.Name, tn.Identifier) || n != round+1 {
				t.Fatalf("%s served from %s with %d rows, want its own database with %d", tn.Identifier, db, n, round+1)
			}
			if open := pools.OpenDatabases(); open > 2 {
				t.Fatalf("%d tenant-database pools open, budget allows 2", open)
			}
		}
	}
}

// A tenant placed on a cell this process does not know gets an error that
// IsUnavailable recognises (503), never the default cell's data.
func TestPools_UnknownCellIsUnavailable(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	pools := d.Pools(t)
	tn := &tenancy.Tenant{ID: uuid.New(), Identifier: "ghost", Isolation: tenancy.IsolationRLS, Cell: "elsewhere", Status: tenancy.StatusActive}
	var n int
	err := pools.QueryRowContext(tenancy.WithTenant(context.Background(), tn), `SELECT count(*) FROM projects`).Scan(&n)
	if !tenancy.IsUnavailable(err) || !errors.Is(err, tenancy.ErrCellUnavailable) {
		t.Fatalf("tenant of an unknown cell: %v, want ErrCellUnavailable", err)
	}
}

// BenchmarkPools_Route is the router's cost per statement: with one cell
// (no database tenants) it is one branch; with cells, a context lookup and
// for another cell one small map lookup.
func BenchmarkPools_Route(b *testing.B) {
	dsn := "postgres://tenantkit_app@127.0.0.1:5432/bench?sslmode=disable"
	single, err := tenancy.OpenPools(tenancy.PoolsConfig{Cells: []tenancy.Cell{{Name: tenancy.DefaultCell, AppDSN: dsn}}})
	if err != nil {
		b.Fatal(err)
	}
	defer single.Close()
	multi, err := tenancy.OpenPools(tenancy.PoolsConfig{Cells: []tenancy.Cell{{Name: tenancy.DefaultCell, AppDSN: dsn}, {Name: "eu2", AppDSN: dsn}},
		Budget: tenancy.Budget{DatabasePool: 2, MaxDatabases: 8}})
	if err != nil {
		b.Fatal(err)
	}
	defer multi.Close()
	here := tenancy.WithTenant(context.Background(), &tenancy.Tenant{ID: uuid.New(), Isolation: tenancy.IsolationRLS, Cell: tenancy.DefaultCell})
	there := tenancy.WithTenant(context.Background(), &tenancy.Tenant{ID: uuid.New(), Isolation: tenancy.IsolationSchema, Cell: "eu2"})
	for _, c := range []struct {
		name  string
		pools *tenancy.Pools
		ctx   context.Context
	}{{"one-cell", single, here}, {"cells/default", multi, here}, {"cells/other", multi, there}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if c.pools.For(c.ctx) == nil {
					b.Fatal("no pool")
				}
			}
		})
	}
}
