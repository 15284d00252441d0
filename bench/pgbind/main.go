// Command pgbind measures what binding a tenant costs Postgres, without HTTP
// or GORM: the same page of 20 rows read over 32 connections, as the table
// owner with WHERE tenant_id = $1 (what a bare app sends), and as the app role
// behind the binding statement in one pipeline (what the kit's binding driver
// sends), with steps in between that tell the costs apart: a second statement,
// the set_config, the non-superuser role (a temporary BYPASSRLS role, dropped
// at exit), row-level security, search_path; then the same binding with the
// policy alone filtering the rows, and with SET LOCAL instead of set_config.
// It prints operations per second and the Postgres backends' CPU per
// operation (from /proc). Run it on a database the api bench seeded:
//
//	go run ./bench/pgbind -db tenantkit_bench
package main

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/your-org/tenantkit/bench/internal/benchdb"
	"github.com/your-org/tenantkit/bench/internal/proccpu"
)

const query = `SELECT "id","tenant_id","name","description","created_at","updated_at" FROM "projects" ` +
	`WHERE "projects"."tenant_id" = $1 ORDER BY created_at DESC, id DESC LIMIT 21`

// queryPolicyOnly leaves the rows to the policy: without GORM's tenant_id
// predicate the policy's becomes the index condition, and the plan loses the
// one-time filter the two together make.
const queryPolicyOnly = `SELECT "id","tenant_id","name","description","created_at","updated_at" FROM "projects" ` +
	`ORDER BY created_at DESC, id DESC LIMIT 21`

type mode struct {
	name, url string
	noWhere   bool   // the policy alone filters
	bindSQL   string // "" for none
	bindArgs  []string
}

func main() {
	server := flag.String("postgres", benchdb.EnvOr("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"), "superuser URL")
	db := flag.String("db", "tenantkit_bench", "database seeded by the api bench")
	appRole := flag.String("app-role", "tenantkit_app", "app role")
	conns := flag.Int("conns", 32, "connections, one client each")
	d := flag.Duration("d", time.Second, "length of one measurement")
	rounds := flag.Int("rounds", 15, "rounds, each measuring every mode once")
	only := flag.String("only", "", "measure only the modes whose name contains this")
	flag.Parse()
	if err := run(context.Background(), benchdb.URL(*server, *db, ""), benchdb.URL(*server, *db, *appRole), *conns, *d, *rounds, *only); err != nil {
		fmt.Fprintln(os.Stderr, "pgbind:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, owner, app string, conns int, d time.Duration, rounds int, only string) error {
	oc, err := pgx.Connect(ctx, owner)
	if err != nil {
		return fmt.Errorf("connect to the bench database (make bench seeds it): %w", err)
	}
	defer oc.Close(ctx)
	var tenant string
	if err := oc.QueryRow(ctx, `SELECT id::text FROM tenancy.tenants WHERE identifier = 'bench-rls'`).Scan(&tenant); err != nil {
		return fmt.Errorf("find the bench's RLS tenant (make bench seeds it): %w", err)
	}
	bypass, dropBypass, err := bypassRole(ctx, oc, owner)
	if err != nil {
		return err
	}
	defer dropBypass()
	const tenantOnly = "select set_config('app.current_tenant', $1, true)"
	const kitBinding = "select set_config('app.current_tenant', $1, true), set_config('search_path', $2, true)"
	modes := []mode{
		{name: "owner: query", url: owner},
		{name: "owner: select 1 + query", url: owner, bindSQL: "select 1"},
		{name: "owner: set_config + query", url: owner, bindSQL: tenantOnly, bindArgs: []string{tenant}},
		{name: "non-superuser, no RLS: set_config + query", url: bypass, bindSQL: tenantOnly, bindArgs: []string{tenant}},
		{name: "app: tenant binding + query", url: app, bindSQL: tenantOnly, bindArgs: []string{tenant}},
		{name: "app: tenant + search_path + query", url: app, bindSQL: kitBinding, bindArgs: []string{tenant, `"public"`}},
		{name: "app: same, policy alone filters", url: app, noWhere: true, bindSQL: kitBinding, bindArgs: []string{tenant, `"public"`}},
		{name: "app: SET LOCAL tenant + query", url: app, bindSQL: "SET LOCAL app.current_tenant = '" + tenant + "'"},
	}
	modes = slices.DeleteFunc(modes, func(m mode) bool { return !strings.Contains(m.name, only) })
	pools := make([]*pool, len(modes))
	for i, m := range modes {
		p, err := open(ctx, m, tenant, conns)
		if err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
		defer p.close(ctx)
		pools[i] = p
	}
	// Short rounds, every other one in reverse order, and medians: this
	// machine's speed drifts by more than the differences measured.
	ops := make([][]float64, len(modes))
	cpu := make([][]float64, len(modes))
	added := make([][]float64, len(modes)) // over the first mode, per round
	for r := 0; r < rounds; r++ {
		order := slices.Clone(pools)
		if r%2 == 1 {
			slices.Reverse(order)
		}
		perRound := map[*pool]float64{}
		for _, p := range order {
			o, c, err := p.measure(ctx, tenant, d)
			if err != nil {
				return fmt.Errorf("%s: %w", p.mode.name, err)
			}
			perRound[p] = c
			i := slices.Index(pools, p)
			ops[i], cpu[i] = append(ops[i], o), append(cpu[i], c)
		}
		for i, p := range pools {
			added[i] = append(added[i], perRound[p]-perRound[pools[0]])
		}
	}
	fmt.Printf("medians of %d rounds of %s, %d connections\n", rounds, d, conns)
	for i, m := range modes {
		fmt.Printf("%-42s %7.0f ops/s   Postgres %5.1f µs/op (%+5.1f)\n", m.name, median(ops[i]), median(cpu[i]), median(added[i]))
	}
	return nil
}

// bypassRole creates a login role that is neither superuser nor subject to
// RLS (BYPASSRLS), reading the projects: what the app role pays for not
// being a superuser, apart from what the policy costs. The returned func
// drops it.
func bypassRole(ctx context.Context, oc *pgx.Conn, owner string) (string, func(), error) {
	const role = "tenantkit_bench_bypass"
	drop := func() {
		_, _ = oc.Exec(ctx, `DROP OWNED BY `+role)
		_, _ = oc.Exec(ctx, `DROP ROLE IF EXISTS `+role)
	}
	if _, err := oc.Exec(ctx, `DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '`+role+`') THEN CREATE ROLE `+role+` LOGIN BYPASSRLS; END IF; END $$`); err != nil {
		return "", nil, fmt.Errorf("create %s: %w", role, err)
	}
	if _, err := oc.Exec(ctx, `GRANT SELECT ON public.projects TO `+role); err != nil {
		drop()
		return "", nil, fmt.Errorf("grant %s: %w", role, err)
	}
	u, err := url.Parse(owner)
	if err != nil {
		drop()
		return "", nil, err
	}
	u.User = url.User(role)
	return u.String(), drop, nil
}

func median(xs []float64) float64 {
	xs = slices.Clone(xs)
	slices.Sort(xs)
	return xs[len(xs)/2]
}

// pool is one mode's connections, kept for the whole run so that every
// measurement runs on warm backends.
type pool struct {
	mode mode
	cs   []*pgx.Conn
	pids []uint32
}

func open(ctx context.Context, m mode, tenant string, n int) (*pool, error) {
	p := &pool{mode: m}
	for range n {
		c, err := pgx.Connect(ctx, m.url)
		if err != nil {
			p.close(ctx)
			return nil, err
		}
		p.cs, p.pids = append(p.cs, c), append(p.pids, c.PgConn().PID())
		q := query
		if m.noWhere {
			q = queryPolicyOnly
		}
		if _, err := c.Prepare(ctx, "q", q); err == nil && m.bindSQL != "" {
			_, err = c.Prepare(ctx, "b", m.bindSQL)
		}
		for i := 0; err == nil && i < 10; i++ { // past the plan cache's custom plans
			err = once(ctx, c, m, tenant)
		}
		if err != nil {
			p.close(ctx)
			return nil, err
		}
	}
	return p, nil
}

func (p *pool) close(ctx context.Context) {
	for _, c := range p.cs {
		c.Close(ctx)
	}
}

// measure runs the mode on every connection for d: operations per second
// and Postgres CPU per operation.
func (p *pool) measure(ctx context.Context, tenant string, d time.Duration) (opsPerSec, cpuPerOp float64, err error) {
	var ops atomic.Int64
	var first atomic.Value
	before := backendsCPU(p.pids)
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for _, c := range p.cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				if err := once(ctx, c, p.mode, tenant); err != nil {
					first.CompareAndSwap(nil, err)
					return
				}
				ops.Add(1)
			}
		}()
	}
	wg.Wait()
	if e, ok := first.Load().(error); ok {
		return 0, 0, e
	}
	cpu := backendsCPU(p.pids) - before
	var generic, custom int64
	if err := p.cs[0].QueryRow(ctx, `SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE name = 'q'`).Scan(&generic, &custom); err != nil {
		return 0, 0, err
	}
	if custom > generic { // planned at every execution: the figure would be the planner's
		fmt.Printf("%s: the page was planned afresh %d times, reused %d\n", p.mode.name, custom, generic)
	}
	return float64(ops.Load()) / d.Seconds(), float64(cpu.Microseconds()) / float64(ops.Load()), nil
}

// once reads the page: binding and query in one pipeline when m binds.
func once(ctx context.Context, c *pgx.Conn, m mode, tenant string) error {
	pc := c.PgConn()
	p := pc.StartPipeline(ctx)
	if m.bindSQL != "" {
		params := make([][]byte, len(m.bindArgs))
		for i, a := range m.bindArgs {
			params[i] = []byte(a)
		}
		p.SendQueryPrepared("b", params, nil, nil)
	}
	if m.noWhere {
		p.SendQueryPrepared("q", nil, nil, nil)
	} else {
		p.SendQueryPrepared("q", [][]byte{[]byte(tenant)}, nil, nil)
	}
	if err := p.Sync(); err != nil {
		p.Close()
		return err
	}
	rows := 0 // of the last result: the page
	for {
		res, err := p.GetResults()
		if err != nil {
			p.Close()
			return err
		}
		if res == nil {
			break
		}
		if rr, ok := res.(*pgconn.ResultReader); ok {
			rows = 0
			for rr.NextRow() {
				rows++
			}
			if _, err := rr.Close(); err != nil {
				p.Close()
				return err
			}
		}
	}
	if err := p.Close(); err != nil {
		return err
	}
	if rows == 0 { // an app role that sees nothing measures nothing
		return fmt.Errorf("the page came back empty: the binding did not take")
	}
	return nil
}

func backendsCPU(pids []uint32) time.Duration {
	var sum time.Duration
	for _, pid := range pids {
		if d, err := proccpu.Process(int(pid)); err == nil {
			sum += d
		}
	}
	return sum
}
