package tenancy_test

import (
	"context"
	"database/sql"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/testenv"
)

// sessionState reads, unbound, what the connection itself carries.
func sessionState(t *testing.T, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (tenant, searchPath string) {
	t.Helper()
	err := q.QueryRowContext(context.Background(),
		`SELECT coalesce(current_setting('app.current_tenant', true), ''), current_setting('search_path')`).Scan(&tenant, &searchPath)
	if err != nil {
		t.Fatalf("read session state: %v", err)
	}
	return tenant, searchPath
}

// defaultSearchPath is the server default, read from a connection that never ran a bound statement.
func defaultSearchPath(t *testing.T, d *testenv.DB) string {
	t.Helper()
	var p string
	if err := d.Owner.QueryRowContext(context.Background(), `SELECT reset_val FROM pg_settings WHERE name = 'search_path'`).Scan(&p); err != nil {
		t.Fatal(err)
	}
	return p
}

// Invariant 1: a binding lives exactly as long as its statement's implicit
// transaction, so the next unbound statement on the same connection sees nothing.
func TestBindDriver_BindingDoesNotOutliveItsStatement(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	ctx := context.Background()
	prem := d.Tenant(t, "bind-prem", tenancy.TierPremium)
	std := d.Tenant(t, "bind-std", tenancy.TierStandard)
	wantPath := defaultSearchPath(t, d)

	conn, err := d.App.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var pid int
	if err := conn.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	if tn, sp := sessionState(t, conn); tn != "" || sp != wantPath {
		t.Fatalf("fresh connection: tenant %q search_path %q", tn, sp)
	}

	steps := []struct {
		name string
		run  func(t *testing.T, tn *tenancy.Tenant)
	}{
		{"exec", func(t *testing.T, tn *tenancy.Tenant) {
			if _, err := conn.ExecContext(tenancy.WithTenant(ctx, tn), `INSERT INTO projects (tenant_id, name) VALUES ($1, 'p')`, tn.ID); err != nil {
				t.Fatal(err)
			}
		}},
		{"query sees its binding", func(t *testing.T, tn *tenancy.Tenant) {
			var got, schema string
			if err := conn.QueryRowContext(tenancy.WithTenant(ctx, tn), `SELECT current_setting('app.current_tenant'), current_schema()`).Scan(&got, &schema); err != nil {
				t.Fatal(err)
			}
			if got != tn.ID.String() || schema != tn.Schema() {
				t.Fatalf("inside the bound statement: tenant %q schema %q, want %q %q", got, schema, tn.ID, tn.Schema())
			}
		}},
		{"rows closed early", func(t *testing.T, tn *tenancy.Tenant) {
			rows, err := conn.QueryContext(tenancy.WithTenant(ctx, tn), `SELECT g FROM generate_series(1, 5000) g`)
			if err != nil {
				t.Fatal(err)
			}
			rows.Next()
			if err := rows.Close(); err != nil {
				t.Fatal(err)
			}
		}},
		{"failing statement", func(t *testing.T, tn *tenancy.Tenant) {
			var n int
			if err := conn.QueryRowContext(tenancy.WithTenant(ctx, tn), `SELECT 1 / 0`).Scan(&n); err == nil {
				t.Fatal("division by zero succeeded")
			}
			if _, err := conn.ExecContext(tenancy.WithTenant(ctx, tn), `INSERT INTO projects (tenant_id, name) VALUES ($1, '')`, tn.ID); err == nil {
				t.Fatal("check violation succeeded")
			}
		}},
		{"explicit transaction", func(t *testing.T, tn *tenancy.Tenant) {
			tx, err := conn.BeginTx(tenancy.WithTenant(ctx, tn), nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.ExecContext(tenancy.WithTenant(ctx, tn), `INSERT INTO projects (tenant_id, name) VALUES ($1, 'in tx')`, tn.ID); err != nil {
				t.Fatal(err)
			}
			// Unbound statements inside the transaction still see the local binding...
			var got string
			if err := tx.QueryRowContext(ctx, `SELECT current_setting('app.current_tenant')`).Scan(&got); err != nil || got != tn.ID.String() {
				t.Fatalf("later statement of the same transaction: %q %v", got, err)
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
		}},
		{"prepared statement", func(t *testing.T, tn *tenancy.Tenant) {
			st, err := conn.PrepareContext(tenancy.WithTenant(ctx, tn), `SELECT count(*) FROM projects`)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			var n int
			if err := st.QueryRowContext(tenancy.WithTenant(ctx, tn)).Scan(&n); err != nil || n == 0 {
				t.Fatalf("prepared count: %d %v", n, err)
			}
		}},
	}
	for _, tn := range []*tenancy.Tenant{prem, std} {
		for _, s := range steps {
			t.Run(string(tn.Isolation)+"/"+s.name, func(t *testing.T) {
				s.run(t, tn)
				if got, sp := sessionState(t, conn); got != "" || sp != wantPath {
					t.Fatalf("after %s the connection carries tenant %q search_path %q, want \"\" and %q", s.name, got, sp, wantPath)
				}
			})
		}
	}
	var pid2 int
	if err := conn.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&pid2); err != nil || pid2 != pid {
		t.Fatalf("connection changed under the test: %d -> %d (%v)", pid, pid2, err)
	}
}

// Bound statements return rows through the batch path; database/sql must see
// the same Go values as through pgx's stdlib for every common type.
func TestBindDriver_BoundRowsDecodeLikeUnbound(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	ctx := context.Background()
	tn := d.Tenant(t, "decode", tenancy.TierStandard)
	const q = `SELECT true, 7::int2, 42::int4, 9000000000::int8, 1.5::float4, 2.25::float8,
		'2024-02-03 04:05:06.789+00'::timestamptz, '2024-02-03 04:05:06'::timestamp, '2024-02-03'::date,
		'\x01ff'::bytea, '{"a": 1}'::jsonb, '{"b": 2}'::json, 'b7f3c3f4-6f0f-4f59-9a3e-0d1f7c2a9b10'::uuid,
		'héllo'::text, 'x'::varchar, NULL::text, 12.345::numeric, ARRAY[1, 2, 3]::int4[], ARRAY['a', 'b']::text[],
		ARRAY['2024-01-01'::date], ARRAY['b7f3c3f4-6f0f-4f59-9a3e-0d1f7c2a9b10'::uuid], interval '1 day 2 hours',
		'10.1.2.3/32'::inet, 'infinity'::timestamptz, '-infinity'::timestamp, 'infinity'::date, 42::oid, '(1,2)'::point,
		'12:00'::time, '[1,5)'::int4range, B'101', '1 2'::tsvector, 'x'::xml, 'ab'::name, 'a'::char`
	read := func(ctx context.Context) []any {
		t.Helper()
		rows, err := d.App.QueryContext(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		cols, _ := rows.Columns()
		if !rows.Next() {
			t.Fatalf("no row: %v", rows.Err())
		}
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		return vals
	}
	unbound, bound := read(ctx), read(tenancy.WithTenant(ctx, tn))
	for i := range unbound {
		if !reflect.DeepEqual(unbound[i], bound[i]) {
			t.Errorf("column %d: bound %#v, unbound %#v", i+1, bound[i], unbound[i])
		}
	}
}

func TestBindDriver_BoundQueryReturnsEveryRow(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	ctx := tenancy.WithTenant(context.Background(), d.Tenant(t, "many-rows", tenancy.TierPremium))
	for _, n := range []int{0, 1, 2, 10_000} {
		rows, err := d.App.QueryContext(ctx, `SELECT g FROM generate_series(1, $1::int) g`, n)
		if err != nil {
			t.Fatal(err)
		}
		sum, count := 0, 0
		for rows.Next() {
			var g int
			if err := rows.Scan(&g); err != nil {
				t.Fatal(err)
			}
			sum += g
			count++
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
		if count != n || sum != n*(n+1)/2 {
			t.Errorf("generate_series(1, %d): %d rows summing to %d", n, count, sum)
		}
	}
	// An error after some rows surfaces from Rows.Err, not as silent truncation.
	rows, err := d.App.QueryContext(ctx, `SELECT 10 / (3 - g) FROM generate_series(1, 5) g`)
	if err == nil {
		for rows.Next() {
		}
		err = rows.Err()
		rows.Close()
	}
	if err == nil {
		t.Fatal("division by zero in the third row was not reported")
	}
}

// A bound statement cut short by its context leaves nothing behind on the
// pool's only connection (or the connection is discarded).
func TestBindDriver_CanceledStatementLeavesNothing(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	tn := d.Tenant(t, "canceled", tenancy.TierPremium)
	pool, err := tenancy.OpenDB(d.AppURL, tenancy.PoolConfig{MaxIdle: 1}) // one connection, reused
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	wantPath := defaultSearchPath(t, d)
	for _, q := range []string{`SELECT pg_sleep(5)`, `SELECT count(*) FROM projects, pg_sleep(5)`} {
		ctx, cancel := context.WithTimeout(tenancy.WithTenant(context.Background(), tn), 200*time.Millisecond)
		var discard any
		err := pool.QueryRowContext(ctx, q).Scan(&discard)
		cancel()
		if err == nil {
			t.Fatalf("%s outlived its context", q)
		}
		if _, err := pool.ExecContext(tenancy.WithTenant(context.Background(), tn), `UPDATE projects SET name = name`); err != nil {
			t.Fatalf("the pool is unusable after a canceled statement: %v", err)
		}
		if got, sp := sessionState(t, pool); got != "" || sp != wantPath {
			t.Fatalf("after a canceled %s the pool carries tenant %q search_path %q", q, got, sp)
		}
	}
}

// onePool is a pool of one connection, so every statement reuses it.
func onePool(t *testing.T, d *testenv.DB) *sql.DB {
	t.Helper()
	pool, err := tenancy.OpenDB(d.AppURL, tenancy.PoolConfig{MaxIdle: 1})
	if err != nil {
		t.Fatal(err)
	}
	pool.SetMaxOpenConns(1)
	t.Cleanup(func() { pool.Close() })
	return pool
}

func columnCount(t *testing.T, pool *sql.DB, ctx context.Context, q string) int {
	t.Helper()
	rows, err := pool.QueryContext(ctx, q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return len(cols)
}

// Invariant 13: a column added while a connection holds a prepared SELECT *
// does not fail the statement ("cached plan must not change result type"):
// the driver prepares it again and retries, once, the implicit transaction
// having failed whole.
func TestBindDriver_SelectStarSurvivesAnAddedColumn(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	pool := onePool(t, d)
	for _, tn := range []*tenancy.Tenant{d.Tenant(t, "star-std", tenancy.TierStandard), d.Tenant(t, "star-prem", tenancy.TierPremium)} {
		ctx := tenancy.WithTenant(context.Background(), tn)
		before := columnCount(t, pool, ctx, `SELECT * FROM projects`)
		if _, err := d.Owner.Exec(`ALTER TABLE ` + tenancy.QuoteIdent(tn.Schema()) + `.projects ADD COLUMN star_extra text NOT NULL DEFAULT 'x'`); err != nil {
			t.Fatal(err)
		}
		if after := columnCount(t, pool, ctx, `SELECT * FROM projects`); after != before+1 {
			t.Errorf("%s: %d columns after the migration, want %d", tn.Isolation, after, before+1)
		}
	}
}

// A premium tenant's statement is described under its own schema, never
// against public: while its schema lags public (migrate up does public
// first), SELECT * returns the tenant's columns, on a connection that has
// run the same SQL for an RLS tenant before and on a fresh one.
func TestBindDriver_PremiumStatementsDescribedUnderTheirSchema(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	std := d.Tenant(t, "lag-std", tenancy.TierStandard)
	prem := d.Tenant(t, "lag-prem", tenancy.TierPremium)
	if _, err := d.Owner.Exec(`ALTER TABLE public.projects ADD COLUMN lag_extra text NOT NULL DEFAULT 'x'`); err != nil {
		t.Fatal(err)
	}
	var want int
	if err := d.Owner.QueryRow(`SELECT count(*) FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'projects'`, prem.Schema()).Scan(&want); err != nil {
		t.Fatal(err)
	}
	fresh := onePool(t, d)
	if got := columnCount(t, fresh, tenancy.WithTenant(context.Background(), prem), `SELECT * FROM projects`); got != want {
		t.Errorf("fresh connection: %d columns, want the premium schema's %d", got, want)
	}
	used := onePool(t, d)
	if got := columnCount(t, used, tenancy.WithTenant(context.Background(), std), `SELECT * FROM projects`); got != want+1 {
		t.Errorf("rls tenant: %d columns, want public's %d", got, want+1)
	}
	for range 2 {
		if got := columnCount(t, used, tenancy.WithTenant(context.Background(), prem), `SELECT * FROM projects`); got != want {
			t.Errorf("after an RLS tenant: %d columns, want the premium schema's %d", got, want)
		}
	}
}

// A session-level SET search_path left on a pooled connection (an unbound
// statement may run one) does not redirect an RLS tenant's unqualified
// statements: every binding fixes search_path, RLS tenants to public.
func TestBindDriver_SessionSearchPathDoesNotRedirectRLSTenants(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	std := d.Tenant(t, "sp-std", tenancy.TierStandard)
	prem := d.Tenant(t, "sp-prem", tenancy.TierPremium)
	pool := onePool(t, d)
	ctx := context.Background()
	if _, err := pool.ExecContext(ctx, `SET search_path = `+tenancy.QuoteIdent(prem.Schema())); err != nil {
		t.Fatal(err)
	}
	bound := tenancy.WithTenant(ctx, std)
	var schema string
	if err := pool.QueryRowContext(bound, `SELECT current_schema()`).Scan(&schema); err != nil || schema != "public" {
		t.Errorf("RLS tenant's statement ran in schema %q (%v), want public", schema, err)
	}
	if _, err := pool.ExecContext(bound, `INSERT INTO projects (tenant_id, name) VALUES ($1, 'sp')`, std.ID); err != nil {
		t.Fatal(err)
	}
	var inPublic, inPremium int
	if err := d.Owner.QueryRow(`SELECT count(*) FROM public.projects WHERE tenant_id = $1`, std.ID).Scan(&inPublic); err != nil {
		t.Fatal(err)
	}
	if err := d.Owner.QueryRow(`SELECT count(*) FROM ` + tenancy.QuoteIdent(prem.Schema()) + `.projects`).Scan(&inPremium); err != nil {
		t.Fatal(err)
	}
	if inPublic != 1 || inPremium != 0 {
		t.Errorf("RLS tenant's insert: %d rows in public, %d in the premium schema; want 1 and 0", inPublic, inPremium)
	}
}

// With default_query_exec_mode=cache_describe (behind a pooler without
// prepared statements) or exec, bound statements keep their binding and the
// driver leaves no named prepared statement on the connection; in the
// default mode it keeps its own, one per search_path. Direct: it counts one
// session's statements.
func TestBindDriver_ExecModePreparesNothing(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	std := d.Tenant(t, "exec-std", tenancy.TierStandard)
	prem := d.Tenant(t, "exec-prem", tenancy.TierPremium)
	for _, tc := range []struct {
		mode     string
		prepared int
	}{{"cache_describe", 0}, {"exec", 0}, {"", 2}} {
		url := d.DirectAppURL
		if tc.mode != "" {
			sep := "?"
			if strings.Contains(url, "?") {
				sep = "&"
			}
			url += sep + "default_query_exec_mode=" + tc.mode
		}
		pool, err := tenancy.OpenDB(url, tenancy.PoolConfig{MaxIdle: 1})
		if err != nil {
			t.Fatal(err)
		}
		pool.SetMaxOpenConns(1)
		for _, tn := range []*tenancy.Tenant{std, prem} {
			var got, schema string
			err := pool.QueryRowContext(tenancy.WithTenant(context.Background(), tn),
				`SELECT current_setting('app.current_tenant'), current_schema() FROM projects WHERE $1::int = 1 UNION ALL SELECT current_setting('app.current_tenant'), current_schema()`, 1).Scan(&got, &schema)
			if err != nil || got != tn.ID.String() || schema != tn.Schema() {
				t.Errorf("mode %q %s: tenant %q schema %q (%v)", tc.mode, tn.Isolation, got, schema, err)
			}
		}
		var n int
		if err := pool.QueryRowContext(context.Background(), `SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'tk\_%' AND name NOT LIKE 'tk\_bind%'`).Scan(&n); err != nil || n != tc.prepared {
			t.Errorf("mode %q: %d prepared statements of the driver (%v), want %d", tc.mode, n, err, tc.prepared)
		}
		pool.Close()
	}
}
