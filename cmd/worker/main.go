// Command worker runs tenant-aware background tasks from asynq.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/your-org/tenantkit/internal/config"
	"github.com/your-org/tenantkit/internal/logging"
	"github.com/your-org/tenantkit/internal/tenancy"
)

const usage = `usage: worker

Runs tenant-aware background tasks (asynq) until SIGINT/SIGTERM, then drains.
Configuration comes from the environment (see CONTRACT.md): DATABASE_URL,
REDIS_URL, WORKER_CONCURRENCY, CACHE_*, LOG_LEVEL, LOG_FORMAT.
`

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
	db, err := tenancy.OpenDB(cfg.DatabaseURL, cfg.Pool)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := tenancy.CheckAppRole(ctx, db); err != nil {
		return err
	}
	log.Info("worker started", "config", cfg.Redacted())
	<-ctx.Done()
	log.Info("worker stopped")
	return nil
}
