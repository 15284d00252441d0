// Command api serves the tenant API, the admin API, health, metrics and docs.
package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"github.com/your-org/tenantkit/internal/config"
	tkhttp "github.com/your-org/tenantkit/internal/http"
	"github.com/your-org/tenantkit/internal/logging"
	"github.com/your-org/tenantkit/internal/models"
	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/migrations"
)

const usage = `usage: api

Serves the tenant API (/api/v1), the admin API (/admin/v1, when ADMIN_TOKEN is
set), /health, /ready, /metrics and /docs on HTTP_ADDR until SIGINT/SIGTERM,
then drains in-flight requests for up to 15 s.

       api healthcheck [URL]

GETs URL (default http://127.0.0.1:<port of HTTP_ADDR>/health) and exits 0
on a 2xx answer within 3 s, 1 otherwise: the container HEALTHCHECK, for
images without curl or wget.

Configuration comes from the environment (see CONTRACT.md): DATABASE_URL,
MIGRATE_DATABASE_URL, REDIS_URL, HTTP_ADDR, ADMIN_TOKEN, TENANCY_*, JWT_*,
DB_POOL_*, CACHE_*, LOG_LEVEL, LOG_FORMAT.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, nil); err != nil {
		fmt.Fprintln(os.Stderr, "api:", err)
		stop()
		os.Exit(1)
	}
}

// run serves until ctx is done. When ready is not nil it receives the
// listening address (tests use port 0).
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer, ready chan<- string) error {
	if len(args) > 0 && args[0] == "healthcheck" {
		return healthcheck(ctx, args[1:], getenv, stdout)
	}
	if len(args) > 0 {
		fmt.Fprint(stdout, usage)
		if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
			return nil
		}
		return fmt.Errorf("unexpected arguments %v", args)
	}
	cfg, err := config.Load(getenv, config.API)
	if err != nil {
		return err
	}
	log := logging.New(stdout, cfg.LogLevel, cfg.LogFormat)
	log.Info("starting api", "config", cfg.Redacted())

	db, err := tenancy.OpenDB(cfg.DatabaseURL, cfg.Pool)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := tenancy.CheckAppRole(ctx, db); err != nil {
		return err
	}
	gdb, err := tenancy.OpenGORM(db, log)
	if err != nil {
		return err
	}
	rdb, err := openRedis(cfg.RedisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()

	store := &tenancy.PGStore{DB: db}
	chain, err := tenancy.NewChain(cfg.Resolution, store, nil)
	if err != nil {
		return err
	}
	mw := &tenancy.Middleware{Resolver: chain, Skip: tkhttp.SkipPaths}
	if cfg.Resolution.UsesPath() {
		mw.PathPrefix = cfg.Resolution.PathPrefix
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewDBStatsCollector(db, "app"))

	srvCfg := tkhttp.Config{
		Log:      log,
		Tenancy:  mw,
		Projects: models.Projects{DB: gdb},
		Registry: reg,
		Ready: map[string]func(context.Context) error{
			"postgres": db.PingContext,
			"redis":    func(ctx context.Context) error { return rdb.Ping(ctx).Err() },
		},
	}
	srvCfg.OpenAPI, srvCfg.DocsHTML, srvCfg.DocsAssets = tkhttp.Docs()
	if cfg.AdminToken != "" {
		owner, err := openOwner(cfg)
		if err != nil {
			return err
		}
		defer owner.Close()
		srvCfg.Admin = &tkhttp.Admin{Token: cfg.AdminToken, Store: store, Lifecycle: &tenancy.Lifecycle{
			Registry:  store,
			Placement: cfg.Placement,
			Provisioner: &tenancy.Provisioner{Owner: owner, Migrator: &tenancy.Migrator{
				OwnerDSN: cfg.MigrateDatabaseURL, AppRole: appRole(cfg), Control: migrations.Control(), Tenant: migrations.Tenant()}},
		}}
	}
	return serve(ctx, log, cfg.HTTPAddr, tkhttp.New(srvCfg), ready)
}

func appRole(cfg config.Config) string { r, _ := cfg.AppRole(); return r }

// openOwner opens the small owner-role pool that provisioning needs: the app
// role may not create schemas (invariant 3).
func openOwner(cfg config.Config) (*sql.DB, error) {
	owner, err := sql.Open("pgx", cfg.MigrateDatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("open owner pool: %w", err)
	}
	owner.SetMaxOpenConns(2)
	return owner, nil
}

func openRedis(url string) (*redis.Client, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("parse REDIS_URL: %w", err)
	}
	return redis.NewClient(opt), nil
}

func serve(ctx context.Context, log *slog.Logger, addr string, h http.Handler, ready chan<- string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("api listening", "addr", ln.Addr().String())
	if ready != nil {
		ready <- ln.Addr().String()
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: draining in-flight requests")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("stopped")
	return nil
}
