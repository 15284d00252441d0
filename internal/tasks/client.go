package tasks

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	"github.com/your-org/tenantkit/internal/apperr"
	"github.com/your-org/tenantkit/internal/tenancy"
)

// enqueueTimeout bounds an enqueue whose context has no deadline, so that a
// Redis that does not answer fails a request instead of hanging it.
const enqueueTimeout = 5 * time.Second

// Client enqueues tasks for the tenant bound to the caller's context.
type Client struct {
	Asynq       *asynq.Client
	QueuePrefix string // "" in production; tests isolate their queues with one
}

// Enqueue queues task for the tenant of ctx: the tenant id goes in the task
// header (which the worker trusts), in the payload (which asynq's uniqueness
// hashes) and in the task id's namespace. It fails with an internal error when
// ctx has no tenant, conflict for a duplicate (IsDuplicate) and unavailable
// when Redis cannot be reached.
func (c *Client) Enqueue(ctx context.Context, task Task, opts ...Option) (*asynq.TaskInfo, error) {
	t, ok := tenancy.FromContext(ctx)
	if !ok {
		return nil, apperr.New(apperr.Internal, "enqueue %s: no tenant bound to context", task.Type)
	}
	return c.enqueue(ctx, t, task, collect(task.Options, opts))
}

// EnqueueSystem queues a task that runs without a tenant; its type must be
// one the worker's Middleware lists as Unscoped.
func (c *Client) EnqueueSystem(ctx context.Context, task Task, opts ...Option) (*asynq.TaskInfo, error) {
	return c.enqueue(ctx, nil, task, collect(task.Options, opts))
}

// SystemTask builds a system task and its options for the asynq scheduler.
func (c *Client) SystemTask(task Task, opts ...Option) (*asynq.Task, []asynq.Option, error) {
	return c.build(nil, task, collect(task.Options, opts))
}

func (c *Client) build(t *tenancy.Tenant, task Task, o options) (*asynq.Task, []asynq.Option, error) {
	id, headers := uuid.Nil, map[string]string{}
	if t != nil {
		id = t.ID
		headers[HeaderTenantID] = t.ID.String()
	}
	payload, err := encode(id, task.Payload)
	if err != nil {
		return nil, nil, fmt.Errorf("encode %s payload: %w", task.Type, err)
	}
	aopts, err := o.asynqOptions(c.QueuePrefix, t)
	if err != nil {
		return nil, nil, fmt.Errorf("enqueue %s: %w", task.Type, err)
	}
	return asynq.NewTaskWithHeaders(task.Type, payload, headers), aopts, nil
}

func (c *Client) enqueue(ctx context.Context, t *tenancy.Tenant, task Task, o options) (*asynq.TaskInfo, error) {
	at, aopts, err := c.build(t, task, o)
	if err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, enqueueTimeout)
		defer cancel()
	}
	info, err := c.Asynq.EnqueueContext(ctx, at, aopts...)
	switch {
	case errors.Is(err, asynq.ErrDuplicateTask), errors.Is(err, asynq.ErrTaskIDConflict):
		return nil, apperr.Wrap(apperr.Conflict, fmt.Errorf("enqueue %s: %w", task.Type, err), "an identical task is already queued")
	case err != nil:
		return nil, apperr.Wrap(apperr.Unavailable, fmt.Errorf("enqueue %s: %w", task.Type, err), "the task queue is unavailable")
	}
	return info, nil
}

// IsDuplicate reports whether Enqueue refused a task as a duplicate (Unique
// window or ID taken).
func IsDuplicate(err error) bool {
	return errors.Is(err, asynq.ErrDuplicateTask) || errors.Is(err, asynq.ErrTaskIDConflict)
}
