package tasks_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"

	"github.com/your-org/tenantkit/internal/app"
	"github.com/your-org/tenantkit/internal/models"
	"github.com/your-org/tenantkit/internal/tasks"
	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/testenv"
)

// env is one test's database, Redis queues (named with the test's unique
// prefix) and a worker wired as cmd/worker wires it.
type env struct {
	*testenv.DB
	redis     asynq.RedisConnOpt
	prefix    string
	gdb       *gorm.DB
	store     *tenancy.PGStore
	client    *tasks.Client
	inspector *asynq.Inspector
	logs      *syncBuffer
	log       *slog.Logger
	reg       *prometheus.Registry
}

func newEnv(t *testing.T) *env {
	t.Helper()
	d := testenv.Postgres(t)
	url, prefix := testenv.Redis(t)
	opt, err := asynq.ParseRedisURI(url)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	gdb, err := tenancy.OpenGORM(d.App, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{DB: d, redis: opt, prefix: prefix, gdb: gdb, store: &tenancy.PGStore{DB: d.App},
		client:    &tasks.Client{Asynq: asynq.NewClient(opt), QueuePrefix: prefix},
		inspector: asynq.NewInspector(opt), logs: logs, log: log, reg: prometheus.NewRegistry()}
	t.Cleanup(func() {
		// The Redis is shared: remove this test's queues, nothing else.
		for q := range tasks.Priorities(prefix) {
			_ = e.inspector.DeleteQueue(q, true)
		}
		_ = e.inspector.Close()
		_ = e.client.Asynq.Close()
	})
	return e
}

// worker starts a worker over the env; extra registers test handlers.
func (e *env) worker(t *testing.T, extra func(w *tasks.Worker)) *tasks.Worker {
	t.Helper()
	w := tasks.NewWorker(tasks.WorkerConfig{
		Redis: e.redis, QueuePrefix: e.prefix, Concurrency: 4, ShutdownTimeout: 5 * time.Second,
		Lookup: e.store, Tenants: e.store, Log: e.log, Metrics: tasks.NewMetrics(e.reg), Handlers: e.handlers(t),
	})
	if extra != nil {
		extra(w)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Shutdown)
	return w
}

func (e *env) reports() *tasks.Reports {
	return &tasks.Reports{Store: models.Reports{DB: e.gdb}, Tasks: e.client, Log: e.log}
}

func (e *env) queue(logical string) string { return tasks.QueueName(e.prefix, logical) }

// eventually polls cond until it holds; the deadline only keeps a broken
// test from hanging, it asserts nothing about speed.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// archived waits for task id in queue to be archived and returns it.
func (e *env) archived(t *testing.T, queue, id string) *asynq.TaskInfo {
	t.Helper()
	var info *asynq.TaskInfo
	eventually(t, "task "+id+" archived", func() bool {
		var err error
		info, err = e.inspector.GetTaskInfo(queue, id)
		if err != nil && !errors.Is(err, asynq.ErrTaskNotFound) {
			t.Fatal(err)
		}
		return err == nil && info.State == asynq.TaskStateArchived
	})
	return info
}

// reportRow reads a report as the owner, bypassing tenancy.
func (e *env) reportRow(t *testing.T, tn *tenancy.Tenant, id string) (status string, result []byte, finished *time.Time) {
	t.Helper()
	err := e.Owner.QueryRow(`SELECT status, result, finished_at FROM `+tenancy.QuoteIdent(tn.Schema())+`.reports WHERE id = $1`, id).
		Scan(&status, &result, &finished)
	if err != nil {
		t.Fatalf("read report %s: %v", id, err)
	}
	return status, result, finished
}

func (e *env) addProjects(t *testing.T, tn *tenancy.Tenant, n int) {
	t.Helper()
	ctx := tenancy.WithTenant(context.Background(), tn)
	for i := 0; i < n; i++ {
		if err := (models.Projects{DB: e.gdb}).Create(ctx, &models.Project{Name: "p"}); err != nil {
			t.Fatal(err)
		}
	}
}

// logLines returns the JSON log records whose msg is msg.
func (e *env) logLines(msg string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(e.logs.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// handlers are the resources' task handlers, registered as cmd/worker does.
func (e *env) handlers(t *testing.T) map[string]asynq.Handler {
	t.Helper()
	h, err := app.TaskHandlers(app.Deps{DB: e.gdb, Tasks: e.client, Log: e.log})
	if err != nil {
		t.Fatal(err)
	}
	return h
}
