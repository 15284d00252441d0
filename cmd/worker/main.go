// Command worker runs tenant-aware background tasks from asynq.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/your-org/tenantkit/internal/app"
	"github.com/your-org/tenantkit/internal/config"
	"github.com/your-org/tenantkit/internal/logging"
	"github.com/your-org/tenantkit/internal/tasks"
	"github.com/your-org/tenantkit/internal/tenancy"
)

const usage = `usage: worker

Runs tenant-aware background tasks (asynq) until SIGINT/SIGTERM, then stops
taking tasks and drains the running ones for up to 25 s (unfinished tasks go
back to their queue). Every task runs inside its tenant's isolation; a task
whose tenant is missing, unknown or suspended is archived without running.

Queues (priority): premium (6), default (3), low (1). Premium tenants' tasks
go to premium by default. Each worker also runs the scheduler of periodic
jobs (nightly report cleanup fanned out to every active tenant).

GET /health, /ready and /metrics are served on WORKER_HTTP_ADDR (default :9090).

Configuration comes from the environment (see docs/contract.md): DATABASE_URL
(or TENANCY_CELLS), TENANCY_MAX_CONNECTIONS, TENANCY_DATABASE_POOL_*, REDIS_URL, WORKER_CONCURRENCY, WORKER_HTTP_ADDR, DB_POOL_*, CACHE_*,
LOG_LEVEL, LOG_FORMAT.
`

// drainTimeout is how long SIGTERM waits for running tasks.
const drainTimeout = 25 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		stop()
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) > 0 {
		fmt.Fprint(stdout, usage)
		if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
			return nil
		}
		return fmt.Errorf("unexpected arguments %v", args)
	}
	cfg, err := config.Load(getenv, config.Worker)
	if err != nil {
		return err
	}
	log := logging.New(stdout, cfg.LogLevel, cfg.LogFormat)
	log.Info("starting worker", "config", cfg.Redacted(), "http_addr", cfg.WorkerAddr)

	reg := prometheus.NewRegistry()
	pools, err := app.OpenPools(ctx, app.PoolsConfig{Cells: cfg.Cells, Pool: cfg.Pool, Budget: cfg.Budget,
		Check: app.CheckCell, Registry: reg, Log: log})
	if err != nil {
		return err
	}
	defer pools.Close()
	db := pools.Default() // the control plane's cell
	gdb, err := tenancy.OpenGORM(pools, log)
	if err != nil {
		return err
	}
	redisOpt, err := asynq.ParseRedisURI(cfg.RedisURL)
	if err != nil {
		return fmt.Errorf("parse REDIS_URL: %w", err)
	}

	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	queueMetrics, err := registerQueueMetrics(reg, redisOpt)
	if err != nil {
		return fmt.Errorf("register queue metrics: %w", err)
	}
	defer queueMetrics.Close()
	store := &tenancy.PGStore{DB: db}
	rdb, err := openRedis(cfg.RedisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	prefix, err := tenancy.CacheNamespace(cfg.DatabaseURL)
	if err != nil {
		return err
	}
	tenants, releaseCache, err := app.Tenants(ctx, app.CacheConfig{Enabled: cfg.CacheEnabled, TTL: cfg.CacheTTL,
		Prefix: prefix, Store: store, Redis: rdb, DB: gdb, Log: log, Registry: reg})
	if err != nil {
		return err
	}
	defer releaseCache()
	handlers, err := app.TaskHandlers(app.Deps{DB: gdb, Log: log,
		Tasks: &tasks.Client{Asynq: asynq.NewClientFromRedisClient(rdb)}})
	if err != nil {
		return err
	}
	w := tasks.NewWorker(tasks.WorkerConfig{
		Redis: redisOpt, Concurrency: cfg.WorkerConcurrency, ShutdownTimeout: drainTimeout,
		Lookup: tenants.Lookup, Tenants: store, Log: log, Metrics: tasks.NewMetrics(reg), Handlers: handlers,
	})
	closeMoves, err := registerMoves(cfg, w, tenants.Lookup, log)
	if err != nil {
		return err
	}
	defer closeMoves()
	if err := w.Server.Ping(); err != nil {
		return fmt.Errorf("redis at REDIS_URL does not answer: %w", err)
	}
	sched, err := newScheduler(redisOpt, w.Client, log)
	if err != nil {
		return err
	}

	checks := pools.Ready() // postgres (default cell), postgres_<cell> for the others
	checks["redis"] = func(context.Context) error { return w.Server.Ping() }
	health, err := listenHealth(cfg.WorkerAddr, log, reg, checks)
	if err != nil {
		return err
	}
	if err := w.Start(); err != nil {
		health.close()
		return err
	}
	if err := sched.Start(); err != nil {
		w.Shutdown()
		health.close()
		return fmt.Errorf("start scheduler: %w", err)
	}
	log.Info("worker started", "concurrency", cfg.WorkerConcurrency, "queues", tasks.Priorities(""))

	select {
	case <-ctx.Done():
	case err := <-health.errc:
		log.Error("health endpoint failed", "err", err)
	}
	log.Info("shutting down: draining running tasks", "timeout", drainTimeout.String())
	sched.Shutdown()
	w.Shutdown()
	health.close()
	log.Info("worker stopped")
	return nil
}

func newScheduler(redisOpt asynq.RedisConnOpt, c *tasks.Client, log *slog.Logger) (*asynq.Scheduler, error) {
	sched := asynq.NewScheduler(redisOpt, &asynq.SchedulerOpts{
		Location: time.UTC, Logger: tasks.AsynqLogger(log), LogLevel: asynq.DebugLevel,
		PostEnqueueFunc: func(info *asynq.TaskInfo, err error) {
			switch {
			case errors.Is(err, asynq.ErrDuplicateTask):
				// Another worker's scheduler enqueued it first.
			case err != nil:
				log.Error("scheduler could not enqueue", "err", err)
			default:
				log.Info("scheduled task enqueued", "task_id", info.ID, "task_type", info.Type)
			}
		},
	})
	if err := tasks.RegisterSchedules(sched, c); err != nil {
		return nil, err
	}
	return sched, nil
}
