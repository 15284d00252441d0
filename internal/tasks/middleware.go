package tasks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	"github.com/your-org/tenantkit/internal/apperr"
	"github.com/your-org/tenantkit/internal/logging"
	"github.com/your-org/tenantkit/internal/tenancy"
)

// TenantLookup loads a task's tenant. tenancy.PGStore implements it, and so
// does its cached decorator, which the worker should be given.
type TenantLookup interface {
	TenantByID(ctx context.Context, id uuid.UUID) (*tenancy.Tenant, error)
}

// Reasons for refusing a task. A refused task is archived at once (asynq
// SkipRetry) with an error naming the reason: retrying cannot help it.
var (
	ErrNoTenant       = errors.New("task has no tenant")
	ErrUnknownTenant  = errors.New("tenant not found")
	ErrTenantInactive = errors.New("tenant is not active")
)

// Middleware is the worker's asynq middleware (ServeMux.Use(m.Wrap)): it
// binds every task to its tenant, logs and measures it.
type Middleware struct {
	Lookup  TenantLookup
	Log     *slog.Logger
	Metrics *Metrics // nil records nothing
	// Unscoped lists the system task types that run without a tenant. They
	// cannot reach tenant data: tenancy.DBFor refuses an unbound context.
	Unscoped map[string]bool
}

// Wrap is the asynq.MiddlewareFunc.
func (m *Middleware) Wrap(next asynq.Handler) asynq.Handler {
	return asynq.HandlerFunc(func(ctx context.Context, task *asynq.Task) (err error) {
		start := time.Now()
		var (
			t               *tenancy.Tenant
			outcome, reason = OutcomeSucceeded, ""
		)
		if !m.Unscoped[task.Type()] {
			t, reason, err = m.tenantOf(ctx, task)
		}
		log := m.taskLogger(ctx, task, t)
		defer func() {
			if r := recover(); r != nil {
				log.Error("task panicked", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				err, outcome = fmt.Errorf("task panicked: %v", r), OutcomeFailed
			}
			m.Metrics.observe(task.Type(), outcome, reason, time.Since(start))
			attrs := []any{"outcome", outcome, "duration_ms", float64(time.Since(start).Microseconds()) / 1000}
			lvl := slog.LevelInfo
			if err != nil {
				attrs, lvl = append(attrs, "err", err.Error()), slog.LevelWarn
			}
			log.Log(ctx, lvl, "task", attrs...)
		}()
		if err != nil {
			outcome = OutcomeFailed // the registry is unreachable: retried later
			if reason != "" {
				outcome = OutcomeRefused
			}
			return err
		}
		if t != nil {
			// Bound exactly as the HTTP middleware binds a request.
			ctx = tenancy.WithTenant(ctx, t)
		}
		if err = next.ProcessTask(logging.With(ctx, log), task); err != nil {
			outcome = OutcomeFailed
		}
		return err
	})
}

// taskLogger carries the task's ids into every line the task logs; a
// refused task still names the tenant its header named.
func (m *Middleware) taskLogger(ctx context.Context, task *asynq.Task, t *tenancy.Tenant) *slog.Logger {
	id, _ := asynq.GetTaskID(ctx)
	retry, _ := asynq.GetRetryCount(ctx)
	queue, _ := asynq.GetQueueName(ctx)
	attrs := []any{"task_id", id, "task_type", task.Type(), "queue", queue, "retry", retry}
	if t != nil {
		attrs = append(attrs, "tenant_id", t.ID.String())
	} else if tid, err := uuid.Parse(task.Headers()[HeaderTenantID]); err == nil {
		attrs = append(attrs, "tenant_id", tid.String())
	}
	return m.Log.With(attrs...)
}

// tenantOf loads the task's tenant. A refusal comes with its reason (a
// metrics label) and wraps asynq.SkipRetry; an error without a reason is a
// transient lookup failure that asynq retries.
func (m *Middleware) tenantOf(ctx context.Context, task *asynq.Task) (*tenancy.Tenant, string, error) {
	raw, ok := task.Headers()[HeaderTenantID]
	if !ok || raw == "" {
		return nil, "no_tenant", refuse(ErrNoTenant, "no "+HeaderTenantID+" header")
	}
	id, err := uuid.Parse(raw)
	if err != nil {
		return nil, "no_tenant", refuse(ErrNoTenant, "malformed "+HeaderTenantID+" header")
	}
	t, err := m.Lookup.TenantByID(ctx, id)
	if err != nil {
		if c := apperr.CodeOf(err); c == apperr.NotFound || c == apperr.TenantNotFound {
			return nil, "unknown_tenant", refuse(ErrUnknownTenant, id.String())
		}
		return nil, "", fmt.Errorf("load tenant %s: %w", id, err)
	}
	if !t.Active() {
		return nil, "tenant_inactive", refuse(ErrTenantInactive, fmt.Sprintf("tenant %s is %s", id, t.Status))
	}
	return t, "", nil
}

func refuse(reason error, detail string) error {
	return fmt.Errorf("task refused: %w (%s): %w", reason, detail, asynq.SkipRetry)
}
