// Command api-bench measures what tenancy costs on the hot path: the real api
// stack (JWT, tenant lookup, isolation binding, GORM, JSON) against a
// baseline Echo + GORM handler running the same query with no tenancy at all,
// alternating phases in one run, for an RLS tenant and a schema tenant.
//
//	go run ./bench/api [-duration 5s] [-rounds 3] [-concurrency 32] [-rows 20]
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/your-org/tenantkit/bench/internal/benchdb"
	"github.com/your-org/tenantkit/internal/app"
	tkhttp "github.com/your-org/tenantkit/internal/http"
	"github.com/your-org/tenantkit/internal/models"
	"github.com/your-org/tenantkit/internal/tenancy"
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
	out         string
	profile     string
	redisURL    string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "api-bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	var o options
	fs := flag.NewFlagSet("api-bench", flag.ContinueOnError)
	fs.StringVar(&o.serverURL, "postgres", benchdb.EnvOr("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"), "superuser URL (creates the bench database)")
	fs.StringVar(&o.dbName, "db", "tenantkit_bench", "bench database (dropped and recreated)")
	fs.StringVar(&o.appRole, "app-role", "tenantkit_app", "app role the tenant stack connects as")
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "length of each measured phase")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "warm-up before the first round")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds; each runs every phase once, alternating")
	fs.IntVar(&o.concurrency, "concurrency", 32, "concurrent HTTP clients")
	fs.IntVar(&o.rows, "rows", 20, "projects per measured tenant (the page size)")
	fs.IntVar(&o.noise, "noise-tenants", 50, "other standard tenants with rows in the shared tables")
	fs.StringVar(&o.profile, "cpuprofile-phase", "", "write a CPU profile of this phase's first round to /tmp")
	fs.StringVar(&o.redisURL, "redis", benchdb.EnvOr("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"), "Redis of the tenant cache")
	fs.StringVar(&o.out, "out", "bench-results", "directory for the JSON figures")
	if err := fs.Parse(args); err != nil {
		return err
	}
	env, err := setup(ctx, o)
	if err != nil {
		return err
	}
	defer env.close()

	baseRLS := target{url: env.baseURL + "/projects/" + env.rls.ID.String()}
	baseSchema := target{url: env.baseURL + "/projects/" + env.schema.ID.String()}
	kitRLS := target{url: env.kitURL + "/api/v1/projects", token: env.rlsToken}
	kitSchema := target{url: env.kitURL + "/api/v1/projects", token: env.schemaToken}
	// mixed alternates both tenants on every client, so pooled connections
	// keep switching tenants, as they do in production.
	phases := []phase{
		{name: "baseline/rls", targets: []target{baseRLS}},
		{name: "tenantkit/rls", targets: []target{kitRLS}},
		{name: "baseline/schema", targets: []target{baseSchema}},
		{name: "tenantkit/schema", targets: []target{kitSchema}},
		{name: "baseline/mixed", targets: []target{baseRLS, baseSchema}},
		{name: "tenantkit/mixed", targets: []target{kitRLS, kitSchema}},
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.concurrency * 2, MaxConnsPerHost: o.concurrency * 2}}
	for _, p := range phases { // every handler must answer correctly before we time it
		if err := p.check(ctx, client, o.rows); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "warming up %s...\n", o.warmup)
	for _, p := range phases {
		load(ctx, client, p, o.concurrency, o.warmup/time.Duration(len(phases)))
	}
	results := map[string]*stats{}
	for r := 1; r <= o.rounds; r++ {
		for _, p := range phases {
			if p.name == o.profile && r == 1 {
				f, err := os.Create("/tmp/cpu-" + strings.ReplaceAll(p.name, "/", "-") + ".pprof")
				if err != nil {
					return err
				}
				_ = pprof.StartCPUProfile(f)
			}
			s := load(ctx, client, p, o.concurrency, o.duration)
			if p.name == o.profile && r == 1 {
				pprof.StopCPUProfile()
			}
			if s.errors > 0 {
				return fmt.Errorf("%s: %d failed requests", p.name, s.errors)
			}
			if results[p.name] == nil {
				results[p.name] = &stats{}
			}
			results[p.name].merge(s)
			fmt.Fprintf(out, "round %d %-17s %8.0f req/s  p50 %6.2f ms  p99 %6.2f ms\n", r, p.name, s.rps(), s.pct(50), s.pct(99))
		}
	}
	return report(out, o, results)
}

type benchEnv struct {
	baseURL, kitURL       string
	rls, schema           *tenancy.Tenant
	rlsToken, schemaToken string
	closers               []func()
}

func (e *benchEnv) close() {
	for i := len(e.closers) - 1; i >= 0; i-- {
		e.closers[i]()
	}
}

const jwtSecret = "bench-secret-bench-secret-bench-secret-01"

func setup(ctx context.Context, o options) (*benchEnv, error) {
	db, err := benchdb.Fresh(ctx, o.serverURL, o.dbName, o.appRole)
	if err != nil {
		return nil, err
	}
	env := &benchEnv{closers: []func(){db.Close}}
	if env.rls, err = db.Tenant(ctx, "bench-rls", tenancy.TierStandard, o.rows); err != nil {
		return nil, err
	}
	if env.schema, err = db.Tenant(ctx, "bench-schema", tenancy.TierPremium, o.rows); err != nil {
		return nil, err
	}
	for i := 0; i < o.noise; i++ {
		if _, err := db.Tenant(ctx, fmt.Sprintf("noise-%03d", i), tenancy.TierStandard, o.rows); err != nil {
			return nil, err
		}
	}
	if _, err := db.Owner.ExecContext(ctx, `ANALYZE`); err != nil {
		return nil, err
	}
	ownerURL, appURL := db.OwnerURL, db.AppURL
	for _, t := range []*tenancy.Tenant{env.rls, env.schema} {
		tok, err := tenancy.SignHS("HS256", []byte(jwtSecret), "tenant_id", t.ID, time.Hour)
		if err != nil {
			return nil, err
		}
		if t == env.rls {
			env.rlsToken = tok
		} else {
			env.schemaToken = tok
		}
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	// The tenant stack, wired as cmd/api wires it.
	appDB, err := tenancy.OpenDB(appURL, tenancy.PoolConfig{MaxIdle: 25, MaxOverflow: 15})
	if err != nil {
		return nil, err
	}
	env.closers = append(env.closers, func() { appDB.Close() })
	gdb, err := tenancy.OpenGORM(appDB, quiet)
	if err != nil {
		return nil, err
	}
	// Tenant lookups go through the same two-level cache as cmd/api: a warm
	// resolution makes no database or Redis round trip.
	rdb, err := redisClient(o.redisURL)
	if err != nil {
		return nil, err
	}
	env.closers = append(env.closers, func() { rdb.Close() })
	lookup := tenancy.NewCachedStore(tenancy.CacheConfig{Store: &tenancy.PGStore{DB: appDB}, Redis: rdb,
		Prefix: "tenantkit:bench:", Log: quiet})
	runCtx, stopCache := context.WithCancel(context.Background())
	env.closers = append(env.closers, stopCache)
	go lookup.Run(runCtx)
	chain, err := tenancy.NewChain(tenancy.ResolutionConfig{Strategies: []string{"jwt"},
		JWT: tenancy.JWTConfig{Algorithm: "HS256", Secret: []byte(jwtSecret), TenantClaim: "tenant_id"}}, lookup, nil)
	if err != nil {
		return nil, err
	}
	kit := tkhttp.New(tkhttp.Config{Log: quiet, Registry: prometheus.NewRegistry(),
		Tenancy:   &tenancy.Middleware{Resolver: chain, Skip: tkhttp.SkipPaths},
		Resources: app.Routes(app.Deps{DB: gdb, Log: quiet})})
	if env.kitURL, err = serve(env, kit); err != nil {
		return nil, err
	}

	// The baseline: same Echo, GORM, query and JSON, no tenancy, as the owner.
	baseSQL, err := sql.Open("pgx", ownerURL)
	if err != nil {
		return nil, err
	}
	baseSQL.SetMaxIdleConns(25)
	baseSQL.SetMaxOpenConns(40)
	env.closers = append(env.closers, func() { baseSQL.Close() })
	base, err := gorm.Open(postgres.New(postgres.Config{Conn: baseSQL}), &gorm.Config{SkipDefaultTransaction: true, Logger: logger.Discard})
	if err != nil {
		return nil, err
	}
	env.baseURL, err = serve(env, baseline(tkhttp.NewPlain(quiet, prometheus.NewRegistry()), base,
		map[uuid.UUID]string{env.rls.ID: "public", env.schema.ID: env.schema.Schema()}))
	return env, err
}

// baseline serves GET /projects/:tenant with the tenant's page of projects:
// the kit's request plumbing (e) and the same query, with no tenancy at all.
func baseline(e *echo.Echo, db *gorm.DB, schemas map[uuid.UUID]string) *echo.Echo {
	e.GET("/projects/:tenant", func(c echo.Context) error {
		id, err := uuid.Parse(c.Param("tenant"))
		if err != nil {
			return echo.ErrNotFound
		}
		var rows []models.Project
		err = db.WithContext(c.Request().Context()).Table(tenancy.QuoteIdent(schemas[id])+".projects").
			Where("tenant_id = ?", id).Order("created_at DESC, id DESC").Limit(21).Find(&rows).Error
		if err != nil {
			return err
		}
		var next *string
		if len(rows) > 20 {
			rows = rows[:20]
			s := "cursor"
			next = &s
		}
		return c.JSON(http.StatusOK, map[string]any{"items": rows, "next_cursor": next})
	})
	return e
}

func serve(env *benchEnv, h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	env.closers = append(env.closers, func() { srv.Close() })
	return "http://" + ln.Addr().String(), nil
}

// phase is one measured load: each client cycles through the targets.
type phase struct {
	name    string
	targets []target
}

type target struct{ url, token string }

func (p phase) request(ctx context.Context, i int) *http.Request {
	t := p.targets[i%len(p.targets)]
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, t.url, nil)
	if t.token != "" {
		req.Header.Set("Authorization", "Bearer "+t.token)
	}
	return req
}

func (p phase) check(ctx context.Context, c *http.Client, rows int) error {
	resp, err := c.Do(p.request(ctx, 0))
	if err != nil {
		return fmt.Errorf("%s: %w", p.name, err)
	}
	defer resp.Body.Close()
	var body struct {
		Items []models.Project `json:"items"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: status %d, %v", p.name, resp.StatusCode, err)
	}
	if want := min(rows, 20); len(body.Items) != want {
		return fmt.Errorf("%s: %d items, want %d", p.name, len(body.Items), want)
	}
	return nil
}

type stats struct {
	requests, errors int64
	elapsed          time.Duration
	latencies        []time.Duration
}

func (s *stats) merge(o *stats) {
	s.requests += o.requests
	s.errors += o.errors
	s.elapsed += o.elapsed
	s.latencies = append(s.latencies, o.latencies...)
}

func (s *stats) rps() float64 { return float64(s.requests) / s.elapsed.Seconds() }

func (s *stats) pct(p float64) float64 {
	if len(s.latencies) == 0 {
		return 0
	}
	sort.Slice(s.latencies, func(i, j int) bool { return s.latencies[i] < s.latencies[j] })
	i := int(float64(len(s.latencies)-1) * p / 100)
	return float64(s.latencies[i].Microseconds()) / 1000
}

// load runs concurrency clients against p for d; bounded in time by design.
func load(ctx context.Context, c *http.Client, p phase, concurrency int, d time.Duration) *stats {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var (
		mu    sync.Mutex
		all   = &stats{}
		errs  atomic.Int64
		wg    sync.WaitGroup
		start = time.Now()
	)
	for i := 0; i < concurrency; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			buf := make([]byte, 32<<10)
			for n := i; ctx.Err() == nil; n++ {
				t0 := time.Now()
				resp, err := c.Do(p.request(ctx, n))
				if err != nil {
					if ctx.Err() == nil {
						errs.Add(1)
					}
					continue
				}
				for {
					if _, err := resp.Body.Read(buf); err != nil {
						break
					}
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					errs.Add(1)
					continue
				}
				if ctx.Err() == nil {
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
	all.elapsed = time.Since(start)
	all.errors = errs.Load()
	return all
}

type figure struct {
	RequestsPerSecond float64 `json:"requests_per_second"`
	P50ms             float64 `json:"p50_ms"`
	P99ms             float64 `json:"p99_ms"`
	Requests          int64   `json:"requests"`
}

func report(out io.Writer, o options, results map[string]*stats) error {
	figs := map[string]figure{}
	for name, s := range results {
		figs[name] = figure{RequestsPerSecond: s.rps(), P50ms: s.pct(50), P99ms: s.pct(99), Requests: s.requests}
	}
	ratio := func(kind string) float64 {
		return figs["tenantkit/"+kind].RequestsPerSecond / figs["baseline/"+kind].RequestsPerSecond
	}
	doc := map[string]any{
		"when": time.Now().UTC().Format(time.RFC3339), "concurrency": o.concurrency, "rounds": o.rounds,
		"phase_seconds": o.duration.Seconds(), "rows": o.rows, "noise_tenants": o.noise,
		"figures": figs,
		"ratios":  map[string]float64{"rls": ratio("rls"), "schema": ratio("schema"), "mixed": ratio("mixed")},
		"targets": map[string]float64{"rls": 0.90, "schema": 0.95},
	}
	fmt.Fprintf(out, "\n%-17s %10s %9s %9s\n", "phase (all rounds)", "req/s", "p50 ms", "p99 ms")
	for _, n := range []string{"baseline/rls", "tenantkit/rls", "baseline/schema", "tenantkit/schema", "baseline/mixed", "tenantkit/mixed"} {
		f := figs[n]
		fmt.Fprintf(out, "%-17s %10.0f %9.2f %9.2f\n", n, f.RequestsPerSecond, f.P50ms, f.P99ms)
	}
	fmt.Fprintf(out, "\nratio rls    %.3f× (target ≥ 0.90×)\nratio schema %.3f× (target ≥ 0.95×)\nratio mixed  %.3f× (both tenants alternating on every client)\n",
		ratio("rls"), ratio("schema"), ratio("mixed"))
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	path := filepath.Join(o.out, "api-"+time.Now().UTC().Format("20060102T150405Z")+".json")
	b, _ := json.MarshalIndent(doc, "", "  ")
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Fprintln(out, "figures written to", path)
	return nil
}

func redisClient(u string) (*redis.Client, error) {
	opt, err := redis.ParseURL(u)
	if err != nil {
		return nil, fmt.Errorf("parse redis url: %w", err)
	}
	return redis.NewClient(opt), nil
}
