package tasks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/hibiken/asynq"
)

// WorkerConfig holds a worker's dependencies.
type WorkerConfig struct {
	Redis       asynq.RedisConnOpt
	QueuePrefix string // "" in production; tests isolate their queues with one
	Concurrency int
	// ShutdownTimeout is how long SIGTERM waits for running tasks before
	// handing them back to the queue (default 25 s).
	ShutdownTimeout time.Duration
	Lookup          TenantLookup // give it the cached store
	Tenants         TenantLister
	Log             *slog.Logger
	Metrics         *Metrics // nil records nothing
	// Handlers are the tenant task handlers by task type, from
	// internal/app.TaskHandlers (the one place they are registered).
	Handlers map[string]asynq.Handler
}

// Worker is an asynq server whose every task runs inside its tenant's isolation.
type Worker struct {
	Server *asynq.Server
	// Mux routes task types to handlers; register more before Start.
	Mux *asynq.ServeMux
	// Client enqueues from handlers (the fan-out).
	Client *Client
	// Middleware binds tenants; add system task types to Unscoped before Start.
	Middleware *Middleware
}

// NewWorker wires the server, the tenant middleware, cfg.Handlers and the
// system fan-out.
func NewWorker(cfg WorkerConfig) *Worker {
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = 25 * time.Second
	}
	client := &Client{Asynq: asynq.NewClient(cfg.Redis), QueuePrefix: cfg.QueuePrefix}
	mw := &Middleware{Lookup: cfg.Lookup, Log: cfg.Log, Metrics: cfg.Metrics, Unscoped: map[string]bool{TypeFanOut: true}}
	mux := asynq.NewServeMux()
	mux.Use(mw.Wrap)

	for typ, h := range cfg.Handlers {
		mux.Handle(typ, h)
	}
	fan := &FanOutWorker{Tenants: cfg.Tenants, Tasks: client, Log: cfg.Log}
	mux.Handle(TypeFanOut, Handler(fan.Run))

	srv := asynq.NewServer(cfg.Redis, asynq.Config{
		Concurrency:     cfg.Concurrency,
		Queues:          Priorities(cfg.QueuePrefix),
		ShutdownTimeout: cfg.ShutdownTimeout,
		RetryDelayFunc:  retryDelay,
		Logger:          AsynqLogger(cfg.Log),
		LogLevel:        asynq.DebugLevel, // the slog handler filters
	})
	return &Worker{Server: srv, Mux: mux, Client: client, Middleware: mw}
}

// Start starts processing in the background.
func (w *Worker) Start() error {
	if err := w.Server.Start(w.Mux); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	return nil
}

// Shutdown stops taking tasks, waits up to ShutdownTimeout for the running
// ones and hands the rest back to their queue.
func (w *Worker) Shutdown() {
	w.Server.Shutdown()
	_ = w.Client.Asynq.Close()
}

// retryDelay retries a task whose worker died (its lease expired) at once:
// the crash was not the task's fault. Other failures back off exponentially.
func retryDelay(n int, err error, t *asynq.Task) time.Duration {
	if errors.Is(err, asynq.ErrLeaseExpired) {
		return time.Second
	}
	return asynq.DefaultRetryDelayFunc(n, err, t)
}

// AsynqLogger routes asynq's own logs (server, scheduler) to slog.
func AsynqLogger(log *slog.Logger) asynq.Logger { return asynqLogger{log} }

type asynqLogger struct{ log *slog.Logger }

func (l asynqLogger) Debug(args ...any) { l.log.Debug(fmt.Sprint(args...), "component", "asynq") }
func (l asynqLogger) Info(args ...any)  { l.log.Info(fmt.Sprint(args...), "component", "asynq") }
func (l asynqLogger) Warn(args ...any)  { l.log.Warn(fmt.Sprint(args...), "component", "asynq") }
func (l asynqLogger) Error(args ...any) { l.log.Error(fmt.Sprint(args...), "component", "asynq") }

// Fatal is asynq's contract: log, then exit the process.
func (l asynqLogger) Fatal(args ...any) {
	l.log.Log(context.Background(), slog.LevelError+4, fmt.Sprint(args...), "component", "asynq")
	os.Exit(1)
}
