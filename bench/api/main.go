// Command api-bench measures what the kit costs on the hot path,
// GET /api/v1/projects (20 rows), against two baselines running the same
// query and JSON with WHERE tenant_id = ? as the table owner:
//
//   - bare: plain Echo v4 + GORM, no middleware at all (the app a user would
//     have written instead; the targets are against it);
//   - plumbing: the kit's request plumbing (request id, logs, metrics,
//     recovery, body limit) without tenancy, to isolate what tenancy costs.
//
// Phases alternate in one run (every round runs each phase once) for an RLS
// tenant, a schema tenant, both alternating on every client, and many
// tenants (-many premium + -many standard, a random one per request). The
// servers run in a child process (this binary with -serve) and the load
// generator here, so both sides are measured the same way, as two processes
// would be in a deployment; the figures include Postgres and server CPU per
// request, read from /proc.
//
// With -pgbouncer the kit also serves through a PgBouncer in transaction
// mode (started here, as Debian's 1.18 runs: default_query_exec_mode=
// cache_describe) and, to tell the exec mode's cost from the pooler's, directly
// with cache_describe: phases pgbouncer/* and describe/*.
//
//	go run ./bench/api [-duration 2s] [-rounds 5] [-concurrency 32] [-rows 20] [-many 100] [-pgbouncer [-pgbouncer-pool 10]]
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/your-org/tenantkit/bench/internal/benchdb"
	"github.com/your-org/tenantkit/internal/models"
	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/testenv/pgbouncer"
)

type options struct {
	serverURL   string
	dbName      string
	appRole     string
	duration    time.Duration
	warmup      time.Duration
	rounds      int
	concurrency int
	rows        int
	noise       int
	many        int
	out         string
	profile     string
	redisURL    string
	pgbouncer   bool
	pgbPool     int
	pooledURL   string // the app role through pgbouncer (-pgbouncer)
	describeURL string // the app role direct, cache_describe (-pgbouncer)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if len(os.Args) > 1 && os.Args[1] == "-serve" {
		if err := serveMain(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "api-bench server:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "api-bench:", err)
		os.Exit(1)
	}
}

const jwtSecret = "bench-secret-bench-secret-bench-secret-01"

func run(ctx context.Context, args []string, out io.Writer) error {
	var o options
	fs := flag.NewFlagSet("api-bench", flag.ContinueOnError)
	fs.StringVar(&o.serverURL, "postgres", benchdb.EnvOr("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"), "superuser URL (creates the bench database)")
	fs.StringVar(&o.dbName, "db", "tenantkit_bench", "bench database (dropped and recreated)")
	fs.StringVar(&o.appRole, "app-role", "tenantkit_app", "app role the tenant stack connects as")
	fs.DurationVar(&o.duration, "duration", time.Second, "length of each measured phase")
	fs.DurationVar(&o.warmup, "warmup", 4*time.Second, "warm-up before the first round (spread over the phases)")
	fs.IntVar(&o.rounds, "rounds", 15, "rounds; each runs every phase once, alternating")
	fs.IntVar(&o.concurrency, "concurrency", 32, "concurrent HTTP clients")
	fs.IntVar(&o.rows, "rows", 20, "projects per measured tenant (the page size)")
	fs.IntVar(&o.noise, "noise-tenants", 50, "other standard tenants with rows in the shared tables")
	fs.IntVar(&o.many, "many", 100, "premium and standard tenants each of the many-tenants phase (0: skip it)")
	fs.StringVar(&o.profile, "cpuprofile-phase", "", "write a CPU profile of the servers during these phases' first round to /tmp (comma-separated, e.g. bare/rls,plumbing/rls)")
	fs.StringVar(&o.redisURL, "redis", benchdb.EnvOr("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"), "Redis of the tenant cache")
	fs.StringVar(&o.out, "out", "bench-results", "directory for the JSON figures")
	fs.BoolVar(&o.pgbouncer, "pgbouncer", benchdb.EnvOr("BENCH_PGBOUNCER", "") != "", "also measure the kit through PgBouncer in transaction mode (BENCH_PGBOUNCER=1)")
	fs.IntVar(&o.pgbPool, "pgbouncer-pool", 10, "PgBouncer default_pool_size: server connections for the kit's 40")
	if err := fs.Parse(args); err != nil {
		return err
	}
	started := time.Now()
	db, err := benchdb.Fresh(ctx, o.serverURL, o.dbName, o.appRole)
	if err != nil {
		return err
	}
	defer db.Close()
	tn, err := seed(ctx, db, o)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "seeded %d tenants in %s\n", 2+o.noise+2*o.many, time.Since(started).Round(100*time.Millisecond))
	poolerPID := 0
	if o.pgbouncer {
		pgb, err := pgbouncer.Run(pgbouncer.Options{Upstream: o.serverURL, PoolSize: o.pgbPool})
		if err != nil {
			return err
		}
		defer pgb.Stop()
		poolerPID = pgb.PID()
		mode := map[string]string{"default_query_exec_mode": "cache_describe"}
		o.pooledURL, o.describeURL = pgb.URL(db.AppURL, mode), withParams(db.AppURL, mode)
		fmt.Fprintf(out, "PgBouncer (transaction mode, %d server connections) on port %d\n", o.pgbPool, pgb.Port)
	}
	addrs, stopServers, serverPID, err := startServers(ctx, db, o, tn)
	if err != nil {
		return err
	}
	defer stopServers()

	phases := buildPhases(addrs, tn)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.concurrency * 2, MaxConnsPerHost: o.concurrency * 2}}
	for _, p := range phases { // every handler must answer correctly before we time it
		if err := p.check(ctx, client, o.rows); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "warming up %s...\n", o.warmup)
	for _, p := range phases {
		// Until the phase has served a few requests per client (pools open,
		// statements prepared), however slow a busy machine makes that.
		var n int64
		for start := time.Now(); n < int64(4*o.concurrency) && time.Since(start) < 30*time.Second; {
			n += load(ctx, client, p, o.concurrency, o.warmup/time.Duration(len(phases))).requests
		}
	}
	meter := cpuMeter{owner: db.Owner, db: o.dbName, server: serverPID, pooler: poolerPID}
	results := map[string]*stats{}
	for r := 1; r <= o.rounds; r++ {
		order := phases
		if r%2 == 0 { // every other round backwards, so drift in the machine's load favours no side
			order = slices.Clone(phases)
			slices.Reverse(order)
		}
		for _, p := range order {
			var prof func() error
			if r == 1 && slices.Contains(strings.Split(o.profile, ","), p.name) {
				prof = profileServers(ctx, addrs.Debug, p.name, o.duration)
			}
			before := meter.sample(ctx)
			s := load(ctx, client, p, o.concurrency, o.duration)
			s.cpu = meter.sample(ctx).since(before)
			if prof != nil {
				if err := prof(); err != nil {
					fmt.Fprintln(out, "profile:", err)
				}
			}
			if s.errors > 0 {
				return fmt.Errorf("%s: %d failed requests, the first: %s", p.name, s.errors, s.firstError)
			}
			if results[p.name] == nil {
				results[p.name] = &stats{}
			}
			results[p.name].merge(s)
			fmt.Fprintf(out, "round %d %-16s %6.0f req/s  p50 %5.2f ms  p99 %6.2f ms  CPU µs/req: pg %3.0f  server %3.0f  client %3.0f  other %3.0f\n",
				r, p.name, s.rps(), s.pct(50), s.pct(99), s.perReq(s.cpu.pg), s.perReq(s.cpu.server), s.perReq(s.cpu.client), s.other())
		}
	}
	bind, err := bindingCost(ctx, db.AppURL, tn.rls)
	if err != nil {
		return err
	}
	return report(out, o, phases, results, bind, time.Since(started))
}

// tenants are the bench's measured tenants.
type tenants struct {
	rls, schema *tenancy.Tenant
	many        []*tenancy.Tenant
	all         []*tenancy.Tenant
}

func seed(ctx context.Context, db *benchdb.DB, o options) (*tenants, error) {
	var tn tenants
	var err error
	if tn.rls, err = db.Tenant(ctx, "bench-rls", tenancy.TierStandard, o.rows); err != nil {
		return nil, err
	}
	if tn.schema, err = db.Tenant(ctx, "bench-schema", tenancy.TierPremium, o.rows); err != nil {
		return nil, err
	}
	tn.all = append(tn.all, tn.rls, tn.schema)
	for i := 0; i < o.noise; i++ {
		if _, err := db.Tenant(ctx, fmt.Sprintf("noise-%03d", i), tenancy.TierStandard, o.rows); err != nil {
			return nil, err
		}
	}
	for i := 0; i < o.many; i++ {
		for _, tier := range []tenancy.Tier{tenancy.TierPremium, tenancy.TierStandard} {
			t, err := db.Tenant(ctx, fmt.Sprintf("many-%s-%03d", tier, i), tier, o.rows)
			if err != nil {
				return nil, err
			}
			tn.many = append(tn.many, t)
			tn.all = append(tn.all, t)
		}
	}
	if _, err := db.Owner.ExecContext(ctx, `ANALYZE`); err != nil {
		return nil, err
	}
	return &tn, nil
}

// startServers runs this binary with -serve and returns its addresses.
func startServers(ctx context.Context, db *benchdb.DB, o options, tn *tenants) (serveAddrs, func(), int, error) {
	exe, err := os.Executable()
	if err != nil {
		return serveAddrs{}, nil, 0, err
	}
	cmd := exec.CommandContext(ctx, exe, "-serve")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return serveAddrs{}, nil, 0, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return serveAddrs{}, nil, 0, err
	}
	if err := cmd.Start(); err != nil {
		return serveAddrs{}, nil, 0, err
	}
	stop := func() { stdin.Close(); _ = cmd.Wait() }
	cfg := serveConfig{AppURL: db.AppURL, OwnerURL: db.OwnerURL, RedisURL: o.redisURL, Schemas: map[uuid.UUID]string{},
		PooledURL: o.pooledURL, DescribeURL: o.describeURL}
	for _, t := range tn.all {
		cfg.Schemas[t.ID] = t.Schema()
	}
	if err := json.NewEncoder(stdin).Encode(cfg); err != nil {
		stop()
		return serveAddrs{}, nil, 0, err
	}
	var addrs serveAddrs
	line, err := bufio.NewReader(stdout).ReadBytes('\n')
	if err == nil {
		err = json.Unmarshal(line, &addrs)
	}
	if err != nil {
		stop()
		return serveAddrs{}, nil, 0, fmt.Errorf("start servers: %w", err)
	}
	return addrs, stop, cmd.Process.Pid, nil
}

// profileServers starts a CPU profile of the server process for d and
// returns a function that waits for it and writes it to /tmp.
func profileServers(ctx context.Context, debugURL, phase string, d time.Duration) func() error {
	done := make(chan error, 1)
	go func() {
		secs := max(1, int(d.Seconds()))
		resp, err := http.Get(fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", debugURL, secs))
		if err != nil {
			done <- err
			return
		}
		defer resp.Body.Close()
		path := "/tmp/cpu-" + strings.ReplaceAll(phase, "/", "-") + ".pprof"
		f, err := os.Create(path)
		if err != nil {
			done <- err
			return
		}
		_, err = io.Copy(f, resp.Body)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		done <- err
	}()
	return func() error { return <-done }
}

func buildPhases(a serveAddrs, tn *tenants) []phase {
	tok := func(t *tenancy.Tenant) string {
		s, err := tenancy.SignHS("HS256", []byte(jwtSecret), "tenant_id", t.ID, 24*time.Hour)
		if err != nil {
			panic(err)
		}
		return s
	}
	base := func(url string, t *tenancy.Tenant) target { return target{url: url + "/projects/" + t.ID.String()} }
	kit := func(t *tenancy.Tenant) target {
		return target{url: a.Kit + "/api/v1/projects", token: tok(t)}
	}
	var bareMany, kitMany []target
	for _, t := range tn.many {
		bareMany = append(bareMany, base(a.Bare, t))
		kitMany = append(kitMany, kit(t))
	}
	// mixed alternates both tenants on every client, so pooled connections
	// keep switching tenants, as they do in production.
	ps := []phase{
		{name: "bare/rls", targets: []target{base(a.Bare, tn.rls)}},
		{name: "kit/rls", targets: []target{kit(tn.rls)}},
		{name: "plumbing/rls", targets: []target{base(a.Plumbing, tn.rls)}},
		{name: "bare/schema", targets: []target{base(a.Bare, tn.schema)}},
		{name: "kit/schema", targets: []target{kit(tn.schema)}},
		{name: "plumbing/schema", targets: []target{base(a.Plumbing, tn.schema)}},
		{name: "bare/mixed", targets: []target{base(a.Bare, tn.rls), base(a.Bare, tn.schema)}},
		{name: "kit/mixed", targets: []target{kit(tn.rls), kit(tn.schema)}},
	}
	if len(tn.many) > 0 {
		ps = append(ps,
			phase{name: "bare/many", targets: bareMany, random: true},
			phase{name: "kit/many", targets: kitMany, random: true})
	}
	// The same kit phases through PgBouncer, and direct in its exec mode.
	for prefix, addr := range map[string]string{"pgbouncer": a.KitPgBouncer, "describe": a.KitDescribe} {
		if addr == "" {
			continue
		}
		via := func(t *tenancy.Tenant) target { return target{url: addr + "/api/v1/projects", token: tok(t)} }
		var many []target
		for _, t := range tn.many {
			many = append(many, via(t))
		}
		ps = append(ps,
			phase{name: prefix + "/rls", targets: []target{via(tn.rls)}},
			phase{name: prefix + "/schema", targets: []target{via(tn.schema)}},
			phase{name: prefix + "/mixed", targets: []target{via(tn.rls), via(tn.schema)}})
		if len(many) > 0 {
			ps = append(ps, phase{name: prefix + "/many", targets: many, random: true})
		}
	}
	return ps
}

// phase is one measured load: each client cycles through the targets, or
// picks one at random per request.
type phase struct {
	name    string
	targets []target
	random  bool
}

type target struct{ url, token string }

func (p phase) request(ctx context.Context, i int) *http.Request {
	t := p.targets[i%len(p.targets)]
	if p.random {
		t = p.targets[rand.IntN(len(p.targets))]
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, t.url, nil)
	if t.token != "" {
		req.Header.Set("Authorization", "Bearer "+t.token)
	}
	return req
}

func (p phase) check(ctx context.Context, c *http.Client, rows int) error {
	for i := range p.targets {
		t := phase{targets: []target{p.targets[i]}}
		resp, err := c.Do(t.request(ctx, 0))
		if err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		var body struct {
			Items []models.Project `json:"items"`
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: status %d, %v", p.name, resp.StatusCode, err)
		}
		if want := min(rows, 20); len(body.Items) != want {
			return fmt.Errorf("%s: %d items, want %d", p.name, len(body.Items), want)
		}
	}
	return nil
}

// load runs concurrency clients against p for d; bounded in time by design.
//
// Requests still in flight at the end are let finish (and not counted):
// cancelling them would make the servers' drivers close their connections,
// and the next phase would pay for new ones.
func load(ctx context.Context, c *http.Client, p phase, concurrency int, d time.Duration) *stats {
	deadline := time.Now().Add(d)
	var (
		mu   sync.Mutex
		all  = &stats{}
		errs atomic.Int64
		wg   sync.WaitGroup
	)
	fail := func(what string) { // keeps the first failure: the figure alone says nothing
		if errs.Add(1) == 1 {
			mu.Lock()
			all.firstError = what
			mu.Unlock()
		}
	}
	for i := 0; i < concurrency; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			buf := make([]byte, 32<<10)
			for n := i; ctx.Err() == nil && time.Now().Before(deadline); n++ {
				t0 := time.Now()
				resp, err := c.Do(p.request(ctx, n))
				if err != nil {
					if ctx.Err() == nil {
						fail(err.Error())
					}
					continue
				}
				size := 0
				for {
					k, err := resp.Body.Read(buf[size:])
					size += k
					if err != nil || size == len(buf) {
						break
					}
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					fail(fmt.Sprintf("%s: %.300s", resp.Status, buf[:size]))
					continue
				}
				if time.Now().Before(deadline) {
					lat = append(lat, time.Since(t0))
				}
			}
			mu.Lock()
			all.latencies = append(all.latencies, lat...)
			all.requests += int64(len(lat))
			mu.Unlock()
		}()
	}
	wg.Wait()
	all.elapsed = d
	all.errors = errs.Load()
	return all
}

// withParams adds query parameters to a postgres:// URL.
func withParams(dsn string, params map[string]string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return dsn
	}
	q := u.Query()
	for k, v := range params {
		q.Set(k, v)
	}
	u.RawQuery = q.Encode()
	return u.String()
}
