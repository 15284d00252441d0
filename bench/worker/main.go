// Command worker-bench measures what tenant propagation costs a background
// task: tasks enqueued with tasks.Client and run by the kit's worker
// (tenant header, tenant lookup, isolation binding, per-task log line,
// metrics, GORM count through the app role) against a bare asynq handler
// doing the same count with no tenancy at all (owner role, explicit table and
// tenant_id). Phases alternate within one run; tasks alternate between an RLS
// and a schema tenant. The kit runs once with the cached tenant registry (as
// production should be wired) and once with plain Postgres lookups.
//
//	go run ./bench/worker [-tasks 1500] [-rounds 8] [-concurrency 10]
package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
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
	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/your-org/tenantkit/internal/models"
	"github.com/your-org/tenantkit/internal/tasks"
	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/migrations"
)

type options struct {
	serverURL, redisURL, dbName, appRole, out, profile string
	tasks, rounds, concurrency, rows                   int
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "worker-bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	var o options
	fs := flag.NewFlagSet("worker-bench", flag.ContinueOnError)
	fs.StringVar(&o.serverURL, "postgres", envOr("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"), "superuser URL (creates the bench database)")
	fs.StringVar(&o.redisURL, "redis", envOr("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"), "Redis for asynq (the bench uses its own queue names and removes them)")
	fs.StringVar(&o.dbName, "db", "tenantkit_bench_worker", "bench database (dropped and recreated)")
	fs.StringVar(&o.appRole, "app-role", "tenantkit_app", "app role the worker connects as")
	fs.IntVar(&o.tasks, "tasks", 1500, "tasks per measured phase")
	fs.IntVar(&o.rounds, "rounds", 8, "rounds; each runs every phase once, alternating")
	fs.IntVar(&o.concurrency, "concurrency", 10, "asynq workers (WORKER_CONCURRENCY)")
	fs.IntVar(&o.rows, "rows", 20, "projects per tenant")
	fs.StringVar(&o.out, "out", "bench-results", "directory for the JSON figures")
	fs.StringVar(&o.profile, "cpuprofile-phase", "", "write a CPU profile of this phase's first round to /tmp")
	if err := fs.Parse(args); err != nil {
		return err
	}
	env, err := setup(ctx, o)
	if err != nil {
		return err
	}
	defer env.close()

	phases := []phase{
		{name: "bare", run: env.bare},
		{name: "tenantkit/cached", run: func(ctx context.Context, n int) (result, error) { return env.kit(ctx, n, env.cached) }},
		{name: "tenantkit/uncached", run: func(ctx context.Context, n int) (result, error) { return env.kit(ctx, n, env.pg) }},
	}
	fmt.Fprintln(out, "warming up...")
	for _, p := range phases {
		if _, err := p.run(ctx, o.tasks/10); err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
	}
	total := map[string]*result{}
	perRound := map[string][]float64{} // ratio to the same round's bare phase
	for r := 1; r <= o.rounds; r++ {
		rates := map[string]float64{}
		order := phases
		if r%2 == 0 { // alternate the order so that a drift in load favours no phase
			order = []phase{phases[2], phases[1], phases[0]}
		}
		for _, p := range order {
			if p.name == o.profile && r == 1 {
				f, err := os.Create("/tmp/cpu-worker-" + strings.ReplaceAll(p.name, "/", "-") + ".pprof")
				if err != nil {
					return err
				}
				_ = pprof.StartCPUProfile(f)
			}
			res, err := p.run(ctx, o.tasks)
			if p.name == o.profile && r == 1 {
				pprof.StopCPUProfile()
			}
			if err != nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
			if total[p.name] == nil {
				total[p.name] = &result{}
			}
			total[p.name].tasks += res.tasks
			total[p.name].elapsed += res.elapsed
			rates[p.name] = res.rate()
			fmt.Fprintf(out, "round %d %-19s %8.0f tasks/s\n", r, p.name, res.rate())
		}
		for _, n := range []string{"cached", "uncached"} {
			perRound[n] = append(perRound[n], rates["tenantkit/"+n]/rates["bare"])
		}
	}
	return report(out, o, total, perRound)
}

type phase struct {
	name string
	run  func(ctx context.Context, n int) (result, error)
}

type result struct {
	tasks   int
	elapsed time.Duration
}

func (r result) rate() float64 { return float64(r.tasks) / r.elapsed.Seconds() }

type benchEnv struct {
	redis       asynq.RedisConnOpt
	prefix      string
	tenants     []*tenancy.Tenant
	rows        int64
	concurrency int
	base        *gorm.DB // owner role, no tenancy
	kitDB       *gorm.DB // app role through tenancy.OpenDB
	pg          tasks.TenantLookup
	cached      tasks.TenantLookup
	quiet       *slog.Logger
	closers     []func()
}

func (e *benchEnv) close() {
	for i := len(e.closers) - 1; i >= 0; i-- {
		e.closers[i]()
	}
}

func setup(ctx context.Context, o options) (*benchEnv, error) {
	admin, err := sql.Open("pgx", o.serverURL)
	if err != nil {
		return nil, err
	}
	defer admin.Close()
	if _, err := admin.ExecContext(ctx, `DROP DATABASE IF EXISTS `+tenancy.QuoteIdent(o.dbName)+` WITH (FORCE)`); err != nil {
		return nil, fmt.Errorf("drop bench database: %w", err)
	}
	if _, err := admin.ExecContext(ctx, `CREATE DATABASE `+tenancy.QuoteIdent(o.dbName)); err != nil {
		return nil, fmt.Errorf("create bench database: %w", err)
	}
	ownerURL, appURL := withDB(o.serverURL, o.dbName, ""), withDB(o.serverURL, o.dbName, o.appRole)
	owner, err := sql.Open("pgx", ownerURL)
	if err != nil {
		return nil, err
	}
	env := &benchEnv{rows: int64(o.rows), concurrency: o.concurrency, prefix: "benchworker" + randomHex(4),
		quiet: slog.New(slog.NewJSONHandler(io.Discard, nil)), closers: []func(){func() { owner.Close() }}}
	if _, err := tenancy.EnsureAppRole(ctx, owner, o.appRole, ""); err != nil {
		return nil, err
	}
	m := &tenancy.Migrator{OwnerDSN: ownerURL, AppRole: o.appRole, Control: migrations.Control(), Tenant: migrations.Tenant()}
	if _, err := m.UpControl(ctx); err != nil {
		return nil, err
	}
	if _, err := m.UpSchema(ctx, "public"); err != nil {
		return nil, err
	}
	life := &tenancy.Lifecycle{Registry: &tenancy.PGStore{DB: owner}, Placement: tenancy.Placement{Strategy: tenancy.Hybrid},
		Provisioner: &tenancy.Provisioner{Migrator: m, Owner: owner}}
	for _, tt := range []struct {
		id   string
		tier tenancy.Tier
	}{{"bench-rls", tenancy.TierStandard}, {"bench-schema", tenancy.TierPremium}, {"noise-a", tenancy.TierStandard}, {"noise-b", tenancy.TierStandard}} {
		t, err := life.Create(ctx, tenancy.NewTenant{Identifier: tt.id, Name: tt.id, Tier: tt.tier})
		if err != nil {
			return nil, err
		}
		if _, err := owner.ExecContext(ctx, `INSERT INTO `+tenancy.QuoteIdent(t.Schema())+`.projects (id, tenant_id, name, description, created_at, updated_at)
			SELECT gen_random_uuid(), $1, 'project ' || i, 'a benchmark project', now(), now() FROM generate_series(1, $2) i`, t.ID, o.rows); err != nil {
			return nil, err
		}
		if tt.id[:5] == "bench" {
			env.tenants = append(env.tenants, t)
		}
	}
	if _, err := owner.ExecContext(ctx, `ANALYZE`); err != nil {
		return nil, err
	}

	// The baseline's pool: the owner, sized like the app pool.
	baseSQL, err := sql.Open("pgx", ownerURL)
	if err != nil {
		return nil, err
	}
	baseSQL.SetMaxIdleConns(25)
	baseSQL.SetMaxOpenConns(40)
	env.closers = append(env.closers, func() { baseSQL.Close() })
	if env.base, err = gorm.Open(postgres.New(postgres.Config{Conn: baseSQL}), &gorm.Config{SkipDefaultTransaction: true, Logger: logger.Discard}); err != nil {
		return nil, err
	}
	// The kit's pool, wired as cmd/worker wires it.
	appDB, err := tenancy.OpenDB(appURL, tenancy.PoolConfig{MaxIdle: 25, MaxOverflow: 15})
	if err != nil {
		return nil, err
	}
	env.closers = append(env.closers, func() { appDB.Close() })
	if env.kitDB, err = tenancy.OpenGORM(appDB, env.quiet); err != nil {
		return nil, err
	}
	store := &tenancy.PGStore{DB: appDB}
	env.pg = store
	ropt, err := redis.ParseURL(o.redisURL)
	if err != nil {
		return nil, err
	}
	rdb := redis.NewClient(ropt)
	env.closers = append(env.closers, func() { rdb.Close() })
	cached := tenancy.NewCachedStore(tenancy.CacheConfig{Store: store, Redis: rdb, Prefix: env.prefix + ":"})
	cctx, cancel := context.WithCancel(ctx)
	go cached.Run(cctx)
	env.closers = append(env.closers, cancel)
	env.cached = cached

	if env.redis, err = asynq.ParseRedisURI(o.redisURL); err != nil {
		return nil, err
	}
	insp := asynq.NewInspector(env.redis)
	env.closers = append(env.closers, func() {
		for _, q := range env.queues() {
			_ = insp.DeleteQueue(q, true)
		}
		insp.Close()
	})
	return env, nil
}

func (e *benchEnv) queues() []string {
	out := []string{e.prefix + "-bare"}
	for q := range tasks.Priorities(e.prefix) {
		out = append(out, q)
	}
	return out
}

// tracker times a phase from the first task's start to the last task's end,
// so server start-up and enqueueing are not measured.
type tracker struct {
	n, done, bad atomic.Int64
	started      sync.Once
	start        time.Time
	finished     chan struct{}
}

func newTracker(n int) *tracker {
	t := &tracker{finished: make(chan struct{})}
	t.n.Store(int64(n))
	return t
}

func (t *tracker) begin() { t.started.Do(func() { t.start = time.Now() }) }

func (t *tracker) end(ok bool) {
	if !ok {
		t.bad.Add(1)
	}
	if t.done.Add(1) == t.n.Load() {
		close(t.finished)
	}
}

func (t *tracker) wait(ctx context.Context) (result, error) {
	select {
	case <-t.finished:
	case <-ctx.Done():
		return result{}, ctx.Err()
	case <-time.After(5 * time.Minute):
		return result{}, fmt.Errorf("only %d of %d tasks ran", t.done.Load(), t.n.Load())
	}
	if b := t.bad.Load(); b > 0 {
		return result{}, fmt.Errorf("%d tasks counted the wrong number of projects", b)
	}
	return result{tasks: int(t.n.Load()), elapsed: time.Since(t.start)}, nil
}

type barePayload struct {
	TenantID uuid.UUID `json:"tenant_id"`
	Schema   string    `json:"schema"`
}

// bare is a plain asynq handler: the same count, with no tenancy at all.
func (e *benchEnv) bare(ctx context.Context, n int) (result, error) {
	q := e.prefix + "-bare"
	c := asynq.NewClient(e.redis)
	defer c.Close()
	for i := 0; i < n; i++ {
		t := e.tenants[i%len(e.tenants)]
		b, _ := json.Marshal(barePayload{TenantID: t.ID, Schema: t.Schema()})
		if _, err := c.EnqueueContext(ctx, asynq.NewTask("bench:count", b), asynq.Queue(q)); err != nil {
			return result{}, err
		}
	}
	tr := newTracker(n)
	mux := asynq.NewServeMux()
	mux.HandleFunc("bench:count", func(ctx context.Context, task *asynq.Task) error {
		tr.begin()
		var p barePayload
		if err := json.Unmarshal(task.Payload(), &p); err != nil {
			return err
		}
		var cnt int64
		err := e.base.WithContext(ctx).Table(tenancy.QuoteIdent(p.Schema)+".projects").Where("tenant_id = ?", p.TenantID).Count(&cnt).Error
		tr.end(err == nil && cnt == e.rows)
		return err
	})
	srv := asynq.NewServer(e.redis, asynq.Config{Concurrency: e.concurrency, Queues: map[string]int{q: 1},
		Logger: tasks.AsynqLogger(e.quiet), LogLevel: asynq.WarnLevel})
	if err := srv.Start(mux); err != nil {
		return result{}, err
	}
	defer srv.Shutdown()
	return tr.wait(ctx)
}

type countPayload struct{}

// kit runs the same count as the kit's worker runs tasks: tasks.Client,
// tasks.NewWorker (middleware, logs, metrics), tasks.Handler, tenancy.DBFor.
func (e *benchEnv) kit(ctx context.Context, n int, lookup tasks.TenantLookup) (result, error) {
	w := tasks.NewWorker(tasks.WorkerConfig{Redis: e.redis, QueuePrefix: e.prefix, Concurrency: e.concurrency,
		Lookup: lookup, DB: e.kitDB, Log: e.quiet, Metrics: tasks.NewMetrics(prometheus.NewRegistry())})
	for i := 0; i < n; i++ {
		t := e.tenants[i%len(e.tenants)]
		if _, err := w.Client.Enqueue(tenancy.WithTenant(ctx, t), tasks.Task{Type: "bench:count", Payload: countPayload{}}); err != nil {
			return result{}, err
		}
	}
	tr := newTracker(n)
	w.Mux.Handle("bench:count", tasks.Handler(func(ctx context.Context, _ countPayload) error {
		tr.begin()
		cnt, err := models.Projects{DB: e.kitDB}.Count(ctx)
		tr.end(err == nil && cnt == e.rows)
		return err
	}))
	if err := w.Start(); err != nil {
		return result{}, err
	}
	defer w.Shutdown()
	return tr.wait(ctx)
}

// report prints overall rates and two ratios: of the totals, and the median
// of the per-round ratios, which a burst of load from other processes on a
// shared machine skews less.
func report(out io.Writer, o options, total map[string]*result, perRound map[string][]float64) error {
	rates := map[string]float64{}
	fmt.Fprintf(out, "\n%-19s %10s\n", "phase (all rounds)", "tasks/s")
	for _, n := range []string{"bare", "tenantkit/cached", "tenantkit/uncached"} {
		rates[n] = total[n].rate()
		fmt.Fprintf(out, "%-19s %10.0f\n", n, rates[n])
	}
	ratios := map[string]float64{
		"cached":   rates["tenantkit/cached"] / rates["bare"],
		"uncached": rates["tenantkit/uncached"] / rates["bare"],
	}
	medians := map[string]float64{"cached": median(perRound["cached"]), "uncached": median(perRound["uncached"])}
	fmt.Fprintf(out, "\nratio tenantkit/cached   %.3f× bare overall, median of rounds %.3f× (target ≥ 0.90×)\n", ratios["cached"], medians["cached"])
	fmt.Fprintf(out, "ratio tenantkit/uncached %.3f× bare overall, median of rounds %.3f× (tenant lookup in Postgres per task)\n", ratios["uncached"], medians["uncached"])
	doc := map[string]any{
		"when": time.Now().UTC().Format(time.RFC3339), "tasks_per_phase": o.tasks, "rounds": o.rounds,
		"concurrency": o.concurrency, "rows": o.rows, "tasks_per_second": rates, "ratios": ratios,
		"median_round_ratios": medians, "round_ratios": perRound, "target": 0.90,
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	path := filepath.Join(o.out, "worker-"+time.Now().UTC().Format("20060102T150405Z")+".json")
	b, _ := json.MarshalIndent(doc, "", "  ")
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Fprintln(out, "figures written to", path)
	return nil
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func withDB(base, name, user string) string {
	u, err := url.Parse(base)
	if err != nil {
		return base
	}
	u.Path = "/" + name
	if user != "" {
		u.User = url.User(user)
	}
	return u.String()
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
