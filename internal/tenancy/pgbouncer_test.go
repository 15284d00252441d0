package tenancy_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/testenv"
	"github.com/your-org/tenantkit/internal/testenv/pgbouncer"
)

// pooledClients opens n app-role pools (clients) through a PgBouncer in
// transaction mode whose one server connection they all share.
func pooledClients(t *testing.T, d *testenv.DB, mode string, n, conns int) []*sql.DB {
	t.Helper()
	pgb := pgbouncer.Start(t, pgbouncer.Options{Upstream: d.OwnerURL, PoolSize: 1})
	params := map[string]string{}
	if mode != "" {
		params["default_query_exec_mode"] = mode
	}
	url := pgb.URL(d.DirectAppURL, params)
	out := make([]*sql.DB, n)
	for i := range out {
		db, err := tenancy.OpenDB(url, tenancy.PoolConfig{MaxIdle: conns})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		out[i] = db
	}
	return out
}

// Behind PgBouncer 1.18 in transaction mode (default_query_exec_mode=
// cache_describe), clients that share one server connection, with their
// statements and transactions interleaved, each see exactly their tenant's
// rows and binding; an unbound statement, run on the same server connection
// between them, sees no binding and no row; and a session-level search_path
// another client left on that connection redirects no bound statement.
func TestPgBouncer_ClientsSharingAServerConnectionNeverSeeAnotherBinding(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	ctx := context.Background()
	tenants := []*tenancy.Tenant{d.Tenant(t, "pgb-a", tenancy.TierStandard), d.Tenant(t, "pgb-b", tenancy.TierStandard),
		d.Tenant(t, "pgb-p", tenancy.TierPremium)}
	want := map[string]int{}
	for i, tn := range tenants {
		for range i + 1 {
			if _, err := d.App.ExecContext(tenancy.WithTenant(ctx, tn), `INSERT INTO projects (tenant_id, name) VALUES ($1, 'p')`, tn.ID); err != nil {
				t.Fatal(err)
			}
		}
		want[tn.ID.String()] = i + 1
	}
	clients := pooledClients(t, d, "cache_describe", 2, 3)

	// Two client connections, one server backend: the pooling is real.
	c1, err := clients[0].Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := clients[1].Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var pid1, pid2 int
	if err := c1.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&pid1); err != nil {
		t.Fatal(err)
	}
	if err := c2.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&pid2); err != nil {
		t.Fatal(err)
	}
	if pid1 != pid2 {
		t.Fatalf("two clients ran on backends %d and %d: pgbouncer is not sharing its one server connection", pid1, pid2)
	}
	// A client leaves session state on the shared server connection.
	if _, err := c1.ExecContext(ctx, `SELECT set_config('search_path', $1, false)`, tenancy.QuoteIdent(tenants[2].Schema())); err != nil {
		t.Fatal(err)
	}
	c1.Close()
	c2.Close()

	var (
		mu   sync.Mutex
		pids = map[int]bool{pid1: true}
		wg   sync.WaitGroup
	)
	errs := make(chan error, 1000)
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 30 {
				tn := tenants[(w+i)%len(tenants)]
				client := clients[w%2]
				pid, err := boundRead(ctx, client, tn, want[tn.ID.String()], i%5 == 0)
				if err != nil {
					errs <- fmt.Errorf("worker %d step %d as %s: %w", w, i, tn.Identifier, err)
					return
				}
				mu.Lock()
				pids[pid] = true
				mu.Unlock()
				if i%3 == 0 {
					var setting string
					var visible, upid int
					if err := clients[(w+1)%2].QueryRowContext(ctx, `SELECT coalesce(current_setting('app.current_tenant', true), ''),
						(SELECT count(*) FROM public.projects) + (SELECT count(*) FROM `+tenancy.QuoteIdent(tenants[2].Schema())+`.projects), pg_backend_pid()`).
						Scan(&setting, &visible, &upid); err != nil {
						errs <- fmt.Errorf("unbound statement: %w", err)
						return
					}
					if setting != "" || visible != 0 {
						errs <- fmt.Errorf("unbound statement after %s's: app.current_tenant %q, %d rows visible", tn.Identifier, setting, visible)
					}
					mu.Lock()
					pids[upid] = true
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if len(pids) != 1 {
		t.Errorf("statements ran on %d backends, want the pool's 1", len(pids))
	}
}

// boundRead reads tn's projects, bound, alone or in an explicit transaction,
// and checks every row, the binding and the count; it returns the backend.
func boundRead(ctx context.Context, db *sql.DB, tn *tenancy.Tenant, want int, inTx bool) (int, error) {
	bctx := tenancy.WithTenant(ctx, tn)
	const q = `SELECT tenant_id::text, current_setting('app.current_tenant'), pg_backend_pid() FROM projects`
	var (
		rows *sql.Rows
		tx   *sql.Tx
		err  error
	)
	if inTx {
		if tx, err = db.BeginTx(bctx, nil); err != nil {
			return 0, err
		}
		defer tx.Rollback() //nolint:errcheck // read only
		rows, err = tx.QueryContext(bctx, q)
	} else {
		rows, err = db.QueryContext(bctx, q)
	}
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n, pid := 0, 0
	for rows.Next() {
		var owner, setting string
		if err := rows.Scan(&owner, &setting, &pid); err != nil {
			return 0, err
		}
		if owner != tn.ID.String() || setting != tn.ID.String() {
			return 0, fmt.Errorf("row of %s under binding %s", owner, setting)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return 0, err
	}
	if n != want {
		return 0, fmt.Errorf("%d rows, want %d", n, want)
	}
	if inTx {
		var setting string
		if err := tx.QueryRowContext(ctx, `SELECT current_setting('app.current_tenant')`).Scan(&setting); err != nil || setting != tn.ID.String() {
			return 0, fmt.Errorf("later unbound statement of the transaction: binding %q (%v)", setting, err)
		}
		return pid, tx.Commit()
	}
	return pid, nil
}

// Why cache_describe: through PgBouncer 1.18 in transaction mode pgx's
// default mode fails (the driver's named statements meet another client's of
// the same name on the shared server connection, or are missing there), and
// exec types arguments by their Go type, so the registry's []byte metadata
// reaches its jsonb column as bytea text. cache_describe does both.
func TestPgBouncer_OnlyCacheDescribeWorksThroughPgBouncer118(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	ctx := context.Background()
	tn := d.Tenant(t, "pgb-modes", tenancy.TierStandard)
	for i, tc := range []struct {
		mode     string
		failCode string // "" : works
		task     string
	}{
		{"", "42P05", "bound reads from two clients"}, // prepared statement "tk_bind_1" already exists
		{"exec", "22P02", "tenant registration"},      // invalid input syntax for type json
		{"cache_describe", "", "both"},
	} {
		t.Run("mode="+tc.mode, func(t *testing.T) {
			clients := pooledClients(t, d, tc.mode, 2, 1)
			var err error
			for j := 0; j < 4 && err == nil; j++ {
				var n int
				err = clients[j%2].QueryRowContext(tenancy.WithTenant(ctx, tn), `SELECT count(*) FROM projects WHERE name <> $1`, "x").Scan(&n)
			}
			if err == nil {
				store := &tenancy.PGStore{DB: clients[0]}
				err = store.Create(ctx, &tenancy.Tenant{Identifier: fmt.Sprintf("pgb-reg-%d", i), Name: "r", Tier: tenancy.TierStandard,
					Isolation: tenancy.IsolationRLS, Metadata: []byte(`{"plan":"pro"}`)})
			}
			var pgErr *pgconn.PgError
			switch {
			case tc.failCode == "" && err != nil:
				t.Fatalf("%s failed: %v", tc.task, err)
			case tc.failCode != "" && (!errors.As(err, &pgErr) || pgErr.Code != tc.failCode):
				t.Fatalf("%s: got %v, want SQLSTATE %s: the premise of docs/scaling.md changed", tc.task, err, tc.failCode)
			}
		})
	}
}

// Migrations hold a session (search_path per schema, one transaction per
// migration): an owner DSN through a pooler is refused before any statement
// (by PgBouncer itself when the connection asks for a search_path, else by
// the migrator, which recognises a pooler by the backend pid it announces),
// and the same migrator reaches Postgres directly.
func TestPgBouncer_MigratorRefusesAPooledOwnerConnection(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	ctx := context.Background()
	pgb := pgbouncer.Start(t, pgbouncer.Options{Upstream: d.OwnerURL, PoolSize: 1})
	for url, want := range map[string]bool{pgb.URL(d.OwnerURL, nil): true, d.OwnerURL: false} {
		conn, err := pgconn.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		pooled, err := tenancy.BehindPooler(ctx, conn)
		conn.Close(ctx)
		if err != nil || pooled != want {
			t.Errorf("BehindPooler through %s: %v (%v), want %v", url, pooled, err, want)
		}
	}
	m := d.Migrator()
	m.OwnerDSN = pgb.URL(d.OwnerURL, nil)
	if _, err := m.UpControl(ctx); err == nil || !strings.Contains(err.Error(), "search_path") && !strings.Contains(err.Error(), "connection pooler") {
		t.Fatalf("migrating through pgbouncer: %v, want refused", err)
	}
	if _, err := d.Migrator().UpControl(ctx); err != nil {
		t.Fatalf("direct: %v", err)
	}
}

// Invariant 13 behind PgBouncer 1.18 (cache_describe, statements unnamed):
// while a migration has reached public but not a premium schema, one client
// connection gets each tenant's own columns from the same SELECT *; when the
// premium schema catches up, the kept description is replaced, not failed on.
func TestPgBouncer_DescriptionsFollowEachTenantsSchema(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	std := d.Tenant(t, "pgb-desc-std", tenancy.TierStandard)
	prem := d.Tenant(t, "pgb-desc-prem", tenancy.TierPremium)
	pool := pooledClients(t, d, "cache_describe", 1, 1)[0]
	const q = `SELECT * FROM projects`
	stdCtx, premCtx := tenancy.WithTenant(context.Background(), std), tenancy.WithTenant(context.Background(), prem)
	base := columnCount(t, pool, stdCtx, q)
	if got := columnCount(t, pool, premCtx, q); got != base {
		t.Fatalf("premium: %d columns, want %d", got, base)
	}
	for _, step := range []struct {
		schema         string
		wantStd, wantP int
	}{{"public", base + 1, base}, {prem.Schema(), base + 1, base + 1}} {
		if _, err := d.Owner.Exec(`ALTER TABLE ` + tenancy.QuoteIdent(step.schema) + `.projects ADD COLUMN desc_extra text NOT NULL DEFAULT 'x'`); err != nil {
			t.Fatal(err)
		}
		// The connection that described before, and one describing now.
		for i, p := range []*sql.DB{pool, pooledClients(t, d, "cache_describe", 1, 1)[0]} {
			for range 2 {
				if got := columnCount(t, p, premCtx, q); got != step.wantP {
					t.Errorf("after migrating %s, connection %d: premium tenant %d columns, want %d", step.schema, i, got, step.wantP)
				}
				if got := columnCount(t, p, stdCtx, q); got != step.wantStd {
					t.Errorf("after migrating %s, connection %d: rls tenant %d columns, want %d", step.schema, i, got, step.wantStd)
				}
			}
		}
	}
}
