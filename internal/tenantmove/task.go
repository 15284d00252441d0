package tenantmove

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
)

// TaskType is the asynq task that runs a move. It carries no tenant (the
// worker registers it as unscoped): it is control-plane work.
const TaskType = "tenant:move"

type payload struct {
	OperationID uuid.UUID `json:"operation_id"`
}

// AsynqQueue enqueues moves with asynq.
type AsynqQueue struct {
	Client *asynq.Client
	Queue  string // e.g. tasks.QueueName(prefix, tasks.QueueDefault)
}

// EnqueueMove enqueues the operation once (the task id is the operation's).
func (q AsynqQueue) EnqueueMove(ctx context.Context, opID uuid.UUID) error {
	b, _ := json.Marshal(payload{OperationID: opID})
	_, err := q.Client.EnqueueContext(ctx, asynq.NewTask(TaskType, b), asynq.TaskID("move:"+opID.String()),
		asynq.Queue(q.Queue), asynq.MaxRetry(MaxAttempts), asynq.Timeout(2*time.Hour))
	return err
}

// MaxAttempts bounds the worker's retries of a move.
const MaxAttempts = 10

// HandleTask is the worker's handler of TaskType.
func (m *Mover) HandleTask(ctx context.Context, t *asynq.Task) error {
	var p payload
	if err := json.Unmarshal(t.Payload(), &p); err != nil || p.OperationID == uuid.Nil {
		return fmt.Errorf("tenant:move payload %q: %w", t.Payload(), asynq.SkipRetry)
	}
	retried, _ := asynq.GetRetryCount(ctx)
	return m.Run(ctx, p.OperationID, retried+1 >= MaxAttempts)
}
