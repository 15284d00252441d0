// Command worker-bench measures what tenant propagation costs a background
// task: tasks enqueued with tasks.Client and run by the kit's worker
// (tenant header, tenant lookup, isolation binding, per-task log line,
// metrics, models.Projects.Count through the app role) against plain asynq
// handlers doing the same count on the same queues: one that binds the
// tenant itself ("bound": the same isolation work, no propagation) and one
// with no tenancy at all ("bare"). Phases alternate within one run, for an
// RLS tenant, a schema tenant and both mixed. Tenants are looked up through
// the cached registry, as cmd/worker wires it (-uncached: Postgres per task).
//
// Two figures per phase: wall-clock throughput, and CPU time per task summed
// over everything the task touches (this process, the bench database's
// Postgres backends, the bench's private redis-server). On a shared machine
// other processes' bursts swing the wall-clock figure from round to round;
// CPU per task hardly moves, and on a CPU-bound box throughput is its inverse.
//
//	go run ./bench/worker [-tasks 1000] [-rounds 6] [-concurrency 10] [-uncached]
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
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"slices"
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

	"github.com/your-org/tenantkit/bench/internal/benchdb"
	"github.com/your-org/tenantkit/internal/models"
	"github.com/your-org/tenantkit/internal/tasks"
	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/tenancy/cachestore"
)

type options struct {
	serverURL, redisURL, dbName, appRole, out, profile string
	tasks, rounds, concurrency, rows                   int
	uncached                                           bool
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
	fs.StringVar(&o.serverURL, "postgres", benchdb.EnvOr("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"), "superuser URL (creates the bench database)")
	fs.StringVar(&o.redisURL, "redis", os.Getenv("BENCH_REDIS_URL"), "Redis for asynq; empty starts a private redis-server (needed to count Redis CPU)")
	fs.StringVar(&o.dbName, "db", "tenantkit_bench_worker", "bench database (dropped and recreated)")
	fs.StringVar(&o.appRole, "app-role", "tenantkit_app", "app role the worker connects as")
	fs.IntVar(&o.tasks, "tasks", 1000, "tasks per measured phase")
	fs.IntVar(&o.rounds, "rounds", 6, "rounds; each runs every phase once, in alternating order")
	fs.IntVar(&o.concurrency, "concurrency", 10, "asynq workers (WORKER_CONCURRENCY)")
	fs.IntVar(&o.rows, "rows", 20, "projects per tenant")
	fs.BoolVar(&o.uncached, "uncached", false, "look tenants up in Postgres for every task instead of through the cached registry")
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
	lookup := env.cached
	if o.uncached {
		lookup = env.pg
	}

	var phases []phase
	for _, m := range mixes {
		ts := env.mix(m)
		phases = append(phases,
			phase{name: "bare/" + m, run: func(ctx context.Context, n int) (result, error) { return env.bare(ctx, n, ts, false) }},
			phase{name: "bound/" + m, run: func(ctx context.Context, n int) (result, error) { return env.bare(ctx, n, ts, true) }},
			phase{name: "tenantkit/" + m, run: func(ctx context.Context, n int) (result, error) { return env.kit(ctx, n, ts, lookup) }})
	}
	fmt.Fprintln(out, "warming up...")
	for _, p := range phases {
		if _, err := p.run(ctx, o.tasks/5); err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
	}
	total := map[string]*result{}
	perRound := map[string][]float64{} // kit ÷ baseline within one round, by "baseline/mix"
	for r := 1; r <= o.rounds; r++ {
		rates := map[string]float64{}
		order := append([]phase(nil), phases...)
		if r%2 == 0 { // alternate the order so that a drift in load favours no phase
			slices.Reverse(order)
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
			total[p.name].add(res)
			rates[p.name] = res.rate()
			fmt.Fprintf(out, "round %d %-17s %8.0f tasks/s %6.0f µs CPU/task\n", r, p.name, res.rate(), res.cpuPerTask())
		}
		for _, m := range mixes {
			for _, base := range baselines {
				perRound[base+"/"+m] = append(perRound[base+"/"+m], rates["tenantkit/"+m]/rates[base+"/"+m])
			}
		}
	}
	return report(out, o, env, total, perRound)
}

// mixes are the tenant mixes measured: an RLS tenant, a schema tenant, and
// both alternating (as a worker serving many tenants sees them).
var mixes = []string{"rls", "schema", "mixed"}

// baselines the kit is compared with. bare: a plain asynq handler counting
// with no tenancy at all (owner role, qualified table, explicit tenant_id):
// the kit's whole cost. bound: a plain asynq handler that binds the tenant
// named in its payload itself (tenancy.WithTenant on a tenant it already
// holds) and runs the same models.Projects.Count: the same isolation work,
// so the ratio is the cost of propagating the tenant (header, lookup,
// refusal checks, middleware, log line, metrics).
var baselines = []string{"bound", "bare"}

type phase struct {
	name string
	run  func(ctx context.Context, n int) (result, error)
}

type result struct {
	tasks   int
	elapsed time.Duration
	cpu     time.Duration // process + Postgres backends + redis-server
}

func (r *result) add(o result) { r.tasks += o.tasks; r.elapsed += o.elapsed; r.cpu += o.cpu }

func (r result) rate() float64 { return float64(r.tasks) / r.elapsed.Seconds() }

func (r result) cpuPerTask() float64 { return float64(r.cpu.Microseconds()) / float64(r.tasks) }

type benchEnv struct {
	redis       asynq.RedisConnOpt
	prefix      string
	rls, schema *tenancy.Tenant
	rows        int64
	concurrency int
	base        *gorm.DB // owner role, no tenancy
	kitDB       *gorm.DB // app role through tenancy.OpenDB
	pg          tasks.TenantLookup
	cached      tasks.TenantLookup
	quiet       *slog.Logger
	cpu         *cpuMeter
	closers     []func()
}

func (e *benchEnv) close() {
	for i := len(e.closers) - 1; i >= 0; i-- {
		e.closers[i]()
	}
}

func setup(ctx context.Context, o options) (*benchEnv, error) {
	db, err := benchdb.Fresh(ctx, o.serverURL, o.dbName, o.appRole)
	if err != nil {
		return nil, err
	}
	ownerURL, appURL := db.OwnerURL, db.AppURL
	meterDB, err := sql.Open("pgx", o.serverURL)
	if err != nil {
		return nil, err
	}
	meter := &cpuMeter{db: meterDB, dbName: o.dbName}
	env := &benchEnv{rows: int64(o.rows), concurrency: o.concurrency, prefix: "benchworker" + randomHex(4),
		quiet: slog.New(slog.NewJSONHandler(io.Discard, nil)), cpu: meter,
		closers: []func(){func() { meterDB.Close() }, db.Close}}
	if o.redisURL == "" {
		url, pid, stop, err := startRedis(ctx)
		if err != nil {
			return nil, err
		}
		env.closers = append(env.closers, stop)
		o.redisURL, meter.redisPID = url, pid
	}
	for _, tt := range []struct {
		id   string
		tier tenancy.Tier
	}{{"bench-rls", tenancy.TierStandard}, {"bench-schema", tenancy.TierPremium}, {"noise-a", tenancy.TierStandard}, {"noise-b", tenancy.TierStandard}} {
		t, err := db.Tenant(ctx, tt.id, tt.tier, o.rows)
		if err != nil {
			env.close()
			return nil, err
		}
		switch tt.id {
		case "bench-rls":
			env.rls = t
		case "bench-schema":
			env.schema = t
		}
	}
	if _, err := db.Owner.ExecContext(ctx, `ANALYZE`); err != nil {
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
	cached := cachestore.New(cachestore.Config{Store: store, Redis: rdb, Prefix: env.prefix + ":"})
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

func (e *benchEnv) queues() []string { return slices.Collect(maps.Keys(tasks.Priorities(e.prefix))) }

func (e *benchEnv) mix(m string) []*tenancy.Tenant {
	switch m {
	case "rls":
		return []*tenancy.Tenant{e.rls}
	case "schema":
		return []*tenancy.Tenant{e.schema}
	}
	return []*tenancy.Tenant{e.rls, e.schema}
}

// queueOf is the queue the kit puts a tenant's task in; the bare phase uses
// the same queues, so that queue layout is not counted as tenancy's cost.
func (e *benchEnv) queueOf(t *tenancy.Tenant) string {
	if t.Tier == tenancy.TierPremium {
		return tasks.QueueName(e.prefix, tasks.QueuePremium)
	}
	return tasks.QueueName(e.prefix, tasks.QueueDefault)
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

// finish waits for the phase and charges it the CPU used since before.
func (e *benchEnv) finish(ctx context.Context, tr *tracker, before cpuSample) (result, error) {
	res, err := tr.wait(ctx)
	if err != nil {
		return res, err
	}
	after, err := e.cpu.sample(ctx)
	if err != nil {
		return res, err
	}
	res.cpu = after.since(before)
	return res, nil
}

type barePayload struct {
	TenantID uuid.UUID `json:"tenant_id"`
	Schema   string    `json:"schema"`
}

// bare runs the count in a plain asynq handler: with no tenancy at all, or
// (bind) binding the tenant itself and counting through the kit's model.
func (e *benchEnv) bare(ctx context.Context, n int, ts []*tenancy.Tenant, bind bool) (result, error) {
	c := asynq.NewClient(e.redis)
	defer c.Close()
	for i := 0; i < n; i++ {
		t := ts[i%len(ts)]
		b, _ := json.Marshal(barePayload{TenantID: t.ID, Schema: t.Schema()})
		if _, err := c.EnqueueContext(ctx, asynq.NewTask("bench:count", b), asynq.Queue(e.queueOf(t))); err != nil {
			return result{}, err
		}
	}
	held := map[uuid.UUID]*tenancy.Tenant{e.rls.ID: e.rls, e.schema.ID: e.schema}
	tr := newTracker(n)
	mux := asynq.NewServeMux()
	mux.HandleFunc("bench:count", func(ctx context.Context, task *asynq.Task) error {
		tr.begin()
		var p barePayload
		if err := json.Unmarshal(task.Payload(), &p); err != nil {
			return err
		}
		var cnt int64
		var err error
		if bind {
			cnt, err = models.Projects{DB: e.kitDB}.Count(tenancy.WithTenant(ctx, held[p.TenantID]))
		} else {
			err = e.base.WithContext(ctx).Table(tenancy.QuoteIdent(p.Schema)+".projects").Where("tenant_id = ?", p.TenantID).Count(&cnt).Error
		}
		tr.end(err == nil && cnt == e.rows)
		return err
	})
	srv := asynq.NewServer(e.redis, asynq.Config{Concurrency: e.concurrency, Queues: tasks.Priorities(e.prefix),
		Logger: tasks.AsynqLogger(e.quiet), LogLevel: asynq.WarnLevel})
	before, err := e.cpu.sample(ctx)
	if err != nil {
		return result{}, err
	}
	if err := srv.Start(mux); err != nil {
		return result{}, err
	}
	defer srv.Shutdown()
	return e.finish(ctx, tr, before)
}

type countPayload struct{}

// kit runs the same count as the kit's worker runs tasks: tasks.Client,
// tasks.NewWorker (middleware, logs, metrics), tasks.Handler, tenancy.DBFor.
func (e *benchEnv) kit(ctx context.Context, n int, ts []*tenancy.Tenant, lookup tasks.TenantLookup) (result, error) {
	w := tasks.NewWorker(tasks.WorkerConfig{Redis: e.redis, QueuePrefix: e.prefix, Concurrency: e.concurrency,
		Lookup: lookup, Log: e.quiet, Metrics: tasks.NewMetrics(prometheus.NewRegistry())})
	for i := 0; i < n; i++ {
		t := ts[i%len(ts)]
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
	before, err := e.cpu.sample(ctx)
	if err != nil {
		return result{}, err
	}
	if err := w.Start(); err != nil {
		return result{}, err
	}
	defer w.Shutdown()
	return e.finish(ctx, tr, before)
}

// report prints, per tenant mix, the kit's throughput against each
// baseline's: overall, as the median of the per-round ratios (which a burst
// of load from other processes skews less), and from CPU per task.
func report(out io.Writer, o options, e *benchEnv, total map[string]*result, perRound map[string][]float64) error {
	type figure struct {
		TasksPerSecond float64 `json:"tasks_per_second"`
		CPUPerTaskUS   float64 `json:"cpu_us_per_task"`
	}
	type ratio struct {
		Overall     float64   `json:"overall"`
		MedianRound float64   `json:"median_of_rounds"`
		CPU         float64   `json:"cpu"`
		Rounds      []float64 `json:"rounds"`
	}
	figs, ratios := map[string]figure{}, map[string]ratio{}
	fmt.Fprintf(out, "\n%-17s %10s %14s\n", "phase (all rounds)", "tasks/s", "µs CPU/task")
	for _, m := range mixes {
		for _, n := range []string{"bare/" + m, "bound/" + m, "tenantkit/" + m} {
			figs[n] = figure{TasksPerSecond: total[n].rate(), CPUPerTaskUS: total[n].cpuPerTask()}
			fmt.Fprintf(out, "%-17s %10.0f %14.0f\n", n, figs[n].TasksPerSecond, figs[n].CPUPerTaskUS)
		}
		k := figs["tenantkit/"+m]
		for _, base := range baselines {
			b, key := figs[base+"/"+m], base+"/"+m
			ratios[key] = ratio{Overall: k.TasksPerSecond / b.TasksPerSecond, MedianRound: median(perRound[key]),
				CPU: b.CPUPerTaskUS / k.CPUPerTaskUS, Rounds: perRound[key]}
		}
	}
	lookup := "cached tenant registry"
	if o.uncached {
		lookup = "tenant looked up in Postgres per task"
	}
	fmt.Fprintf(out, "\ntenantkit ÷ baseline (%s)\n%-14s %9s %17s %22s\n", lookup, "baseline/mix", "overall", "median of rounds", "CPU/task (base ÷ kit)")
	for _, base := range baselines {
		for _, m := range mixes {
			r := ratios[base+"/"+m]
			fmt.Fprintf(out, "%-14s %8.3f× %16.3f× %21.3f×\n", base+"/"+m, r.Overall, r.MedianRound, r.CPU)
		}
	}
	fmt.Fprintln(out, "bound: tenant propagation only (target ≥ 0.90×); bare: propagation plus isolation (no tenancy at all)")
	if !e.cpu.countsRedis() {
		fmt.Fprintln(out, "(Redis CPU not counted: -redis names a shared server)")
	}
	doc := map[string]any{
		"when": time.Now().UTC().Format(time.RFC3339), "tasks_per_phase": o.tasks, "rounds": o.rounds,
		"concurrency": o.concurrency, "rows": o.rows, "lookup": lookup, "redis_cpu_counted": e.cpu.countsRedis(),
		"figures": figs, "ratios": ratios, "target": 0.90, "target_applies_to": "bound",
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

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
