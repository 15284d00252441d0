package tasks

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/hibiken/asynq"

	"github.com/your-org/tenantkit/internal/logging"
	"github.com/your-org/tenantkit/internal/page"
	"github.com/your-org/tenantkit/internal/tenancy"
)

// TenantLister pages through tenants; tenancy.PGStore implements it.
type TenantLister interface {
	List(ctx context.Context, f tenancy.Filter, limit int, after *page.Cursor) ([]*tenancy.Tenant, *string, error)
}

// FanOut is the payload of TypeFanOut: one tenant task to enqueue for every
// active tenant.
type FanOut struct {
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload"`
	Queue   string          `json:"queue,omitempty"` // logical; default QueueLow
	// Spread delays each tenant's task by a random time in [0, Spread) so
	// that thousands of tenants do not hit the database at the same instant.
	Spread time.Duration `json:"spread"`
	// Unique, when set, makes a redelivered fan-out skip the tenants it
	// already enqueued (asynq uniqueness on tenant, type and payload).
	Unique time.Duration `json:"unique"`
}

// FanOutWorker runs TypeFanOut.
type FanOutWorker struct {
	Tenants TenantLister
	Tasks   Enqueuer
	Log     *slog.Logger
}

const fanOutPage = 200

// Run enqueues p's task once per active tenant.
func (w *FanOutWorker) Run(ctx context.Context, p FanOut) error {
	if p.Type == "" {
		return fmt.Errorf("fan-out without a task type: %w", asynq.SkipRetry)
	}
	queue := p.Queue
	if queue == "" {
		queue = QueueLow
	}
	var (
		after              *page.Cursor
		enqueued, existing int
	)
	for {
		ts, next, err := w.Tenants.List(ctx, tenancy.Filter{Status: tenancy.StatusActive}, fanOutPage, after)
		if err != nil {
			return fmt.Errorf("fan-out %s: %w", p.Type, err)
		}
		for _, t := range ts {
			opts := []Option{Queue(queue)}
			if p.Spread > 0 {
				opts = append(opts, Delay(rand.N(p.Spread)))
			}
			if p.Unique > 0 {
				opts = append(opts, Unique(p.Unique))
			}
			_, err := w.Tasks.Enqueue(tenancy.WithTenant(ctx, t), Task{Type: p.Type, Payload: p.Payload}, opts...)
			switch {
			case IsDuplicate(err):
				existing++
			case err != nil:
				// Retry the whole fan-out; with Unique the tenants done so far are skipped.
				return fmt.Errorf("fan-out %s to tenant %s: %w", p.Type, t.ID, err)
			default:
				enqueued++
			}
		}
		if next == nil {
			break
		}
		if after, err = page.Decode(*next); err != nil {
			return fmt.Errorf("fan-out %s: %w", p.Type, err)
		}
	}
	logging.From(ctx, w.Log).Info("fan-out done", "fanout_type", p.Type, "enqueued", enqueued, "already_queued", existing)
	return nil
}

// NightlyCleanupSpec is when the report cleanup fan-out runs (UTC).
const NightlyCleanupSpec = "17 3 * * *"

// NightlyReportCleanup is the fan-out the scheduler enqueues every night:
// report:cleanup for each active tenant, spread over an hour.
func NightlyReportCleanup() Task {
	payload, _ := json.Marshal(ReportCleanup{MaxAgeDays: 30})
	return Task{Type: TypeFanOut, Payload: FanOut{
		Type: TypeReportCleanup, Payload: payload, Spread: time.Hour, Unique: 12 * time.Hour,
	}, Options: []Option{Queue(QueueLow), Unique(time.Hour), MaxRetry(5)}}
}

// RegisterSchedules registers the periodic jobs. Every worker process may
// run a scheduler: the fan-out's Unique option lets only one of their
// enqueues through.
func RegisterSchedules(s *asynq.Scheduler, c *Client) error {
	t, opts, err := c.SystemTask(NightlyReportCleanup())
	if err != nil {
		return err
	}
	if _, err := s.Register(NightlyCleanupSpec, t, opts...); err != nil {
		return fmt.Errorf("register nightly report cleanup: %w", err)
	}
	return nil
}
