package tasks_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	"github.com/your-org/tenantkit/internal/apperr"
	"github.com/your-org/tenantkit/internal/tasks"
	"github.com/your-org/tenantkit/internal/tenancy"
)

// lookupFunc is a registry stub: these tests are about how the middleware
// classifies what the registry answers, not about isolation itself.
type lookupFunc func(uuid.UUID) (*tenancy.Tenant, error)

func (f lookupFunc) TenantByID(_ context.Context, id uuid.UUID) (*tenancy.Tenant, error) {
	return f(id)
}

func middleware(l lookupFunc) *tasks.Middleware {
	return &tasks.Middleware{Lookup: l, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Unscoped: map[string]bool{tasks.TypeFanOut: true}}
}

func taskFor(id uuid.UUID, typ string) *asynq.Task {
	return asynq.NewTaskWithHeaders(typ, []byte(`{"tenant_id":"`+id.String()+`","data":{}}`),
		map[string]string{tasks.HeaderTenantID: id.String()})
}

func TestMiddleware_RefusesWithoutRetryAndSaysWhy(t *testing.T) {
	t.Parallel()
	active := &tenancy.Tenant{ID: uuid.New(), Status: tenancy.StatusActive}
	suspended := &tenancy.Tenant{ID: uuid.New(), Status: tenancy.StatusSuspended}
	lookup := lookupFunc(func(id uuid.UUID) (*tenancy.Tenant, error) {
		switch id {
		case active.ID:
			return active, nil
		case suspended.ID:
			return suspended, nil
		}
		return nil, apperr.New(apperr.NotFound, "tenant not found")
	})
	cases := map[string]struct {
		task *asynq.Task
		want error
	}{
		"no header":        {asynq.NewTask("x:y", []byte(`{}`)), tasks.ErrNoTenant},
		"malformed header": {asynq.NewTaskWithHeaders("x:y", nil, map[string]string{tasks.HeaderTenantID: "acme"}), tasks.ErrNoTenant},
		"unknown tenant":   {taskFor(uuid.New(), "x:y"), tasks.ErrUnknownTenant},
		"suspended tenant": {taskFor(suspended.ID, "x:y"), tasks.ErrTenantInactive},
	}
	for name, c := range cases {
		ran := false
		h := middleware(lookup).Wrap(asynq.HandlerFunc(func(context.Context, *asynq.Task) error { ran = true; return nil }))
		err := h.ProcessTask(context.Background(), c.task)
		if ran || !errors.Is(err, c.want) || !errors.Is(err, asynq.SkipRetry) {
			t.Errorf("%s: ran=%v err=%v, want refused with %v and SkipRetry", name, ran, err, c.want)
		}
	}
}

func TestMiddleware_RegistryOutageIsRetriedNotArchived(t *testing.T) {
	t.Parallel()
	down := lookupFunc(func(uuid.UUID) (*tenancy.Tenant, error) { return nil, errors.New("dial tcp: connection refused") })
	err := middleware(down).Wrap(asynq.HandlerFunc(func(context.Context, *asynq.Task) error {
		t.Error("handler ran without a tenant")
		return nil
	})).ProcessTask(context.Background(), taskFor(uuid.New(), "x:y"))
	if err == nil || errors.Is(err, asynq.SkipRetry) {
		t.Errorf("err = %v, want a retryable error", err)
	}
}

func TestMiddleware_UnscopedSystemTaskRunsWithoutTenant(t *testing.T) {
	t.Parallel()
	var bound bool
	err := middleware(nil).Wrap(asynq.HandlerFunc(func(ctx context.Context, _ *asynq.Task) error {
		_, bound = tenancy.FromContext(ctx)
		return nil
	})).ProcessTask(context.Background(), asynq.NewTask(tasks.TypeFanOut, []byte(`{}`)))
	if err != nil || bound {
		t.Errorf("system task: err=%v tenant bound=%v, want it run unbound", err, bound)
	}
}

func TestDecode_PayloadWrittenForAnotherTenantIsRefused(t *testing.T) {
	t.Parallel()
	a, b := &tenancy.Tenant{ID: uuid.New()}, &tenancy.Tenant{ID: uuid.New()}
	var v struct{}
	err := tasks.Decode(tenancy.WithTenant(context.Background(), b), taskFor(a.ID, "x:y"), &v)
	if !errors.Is(err, asynq.SkipRetry) {
		t.Errorf("err = %v, want a refusal without retry", err)
	}
	if err := tasks.Decode(tenancy.WithTenant(context.Background(), a), taskFor(a.ID, "x:y"), &v); err != nil {
		t.Errorf("own payload: %v", err)
	}
}

func TestQueues_PrefixedNamesCarryPriorities(t *testing.T) {
	t.Parallel()
	p := tasks.Priorities("t1")
	if p["t1-premium"] <= p["t1-default"] || p["t1-default"] <= p["t1-low"] || p["t1-low"] <= 0 || len(p) != 3 {
		t.Errorf("priorities %v, want premium > default > low > 0", p)
	}
	if tasks.QueueName("", tasks.QueueDefault) != "default" {
		t.Error("production queue names must be unprefixed")
	}
}

// Every status but active is refused, including ones this version does not
// know (a fork may add "deleting" or "archived"): the check is "is active",
// never "is suspended".
func TestMiddleware_RefusesEveryStatusButActive(t *testing.T) {
	t.Parallel()
	statuses := []tenancy.Status{tenancy.StatusSuspended, tenancy.StatusProvisioning, "deleting", "archived", ""}
	byID := map[uuid.UUID]*tenancy.Tenant{}
	for _, s := range statuses {
		tn := &tenancy.Tenant{ID: uuid.New(), Identifier: "t-" + string(s), Status: s}
		byID[tn.ID] = tn
	}
	lookup := lookupFunc(func(id uuid.UUID) (*tenancy.Tenant, error) {
		if tn, ok := byID[id]; ok {
			return tn, nil
		}
		return nil, apperr.New(apperr.TenantNotFound, "tenant not found")
	})
	for id, tn := range byID {
		ran := false
		err := middleware(lookup).Wrap(asynq.HandlerFunc(func(context.Context, *asynq.Task) error { ran = true; return nil })).
			ProcessTask(context.Background(), taskFor(id, "x:y"))
		if ran || !errors.Is(err, tasks.ErrTenantInactive) || !errors.Is(err, asynq.SkipRetry) {
			t.Errorf("status %q: ran=%v err=%v, want refused as inactive without retry", tn.Status, ran, err)
		}
	}
	// An unknown tenant (the registry's tenant_not_found as well as not_found) is refused too.
	ran := false
	err := middleware(lookup).Wrap(asynq.HandlerFunc(func(context.Context, *asynq.Task) error { ran = true; return nil })).
		ProcessTask(context.Background(), taskFor(uuid.New(), "x:y"))
	if ran || !errors.Is(err, tasks.ErrUnknownTenant) || !errors.Is(err, asynq.SkipRetry) {
		t.Errorf("unknown tenant: ran=%v err=%v, want refused without retry", ran, err)
	}
	// And active runs, bound to its tenant: the refusals above are not a middleware that refuses everything.
	active := &tenancy.Tenant{ID: uuid.New(), Status: tenancy.StatusActive}
	var bound uuid.UUID
	err = middleware(func(uuid.UUID) (*tenancy.Tenant, error) { return active, nil }).Wrap(asynq.HandlerFunc(func(ctx context.Context, _ *asynq.Task) error {
		if tn, ok := tenancy.FromContext(ctx); ok {
			bound = tn.ID
		}
		return nil
	})).ProcessTask(context.Background(), taskFor(active.ID, "x:y"))
	if err != nil || bound != active.ID {
		t.Errorf("active tenant: err=%v bound=%v, want run bound to %v", err, bound, active.ID)
	}
}
