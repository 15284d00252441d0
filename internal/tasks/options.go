package tasks

import (
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"github.com/your-org/tenantkit/internal/tenancy"
)

// Logical queues. Their Redis names carry the worker's queue prefix (tests
// isolate themselves with one); Priorities gives the worker their weights.
const (
	QueuePremium = "premium" // premium tenants' tasks by default
	QueueDefault = "default" // standard tenants' tasks by default
	QueueLow     = "low"     // maintenance: fan-outs, cleanups
)

var queueWeights = map[string]int{QueuePremium: 6, QueueDefault: 3, QueueLow: 1}

// QueueName is the Redis name of a logical queue under prefix.
func QueueName(prefix, logical string) string {
	if prefix == "" {
		return logical
	}
	return prefix + "-" + logical
}

// Priorities maps the queues under prefix to their asynq weights: with all
// queues busy, premium gets 60 % of the workers, default 30 %, low 10 %.
func Priorities(prefix string) map[string]int {
	out := make(map[string]int, len(queueWeights))
	for q, w := range queueWeights {
		out[QueueName(prefix, q)] = w
	}
	return out
}

// Option changes how a task is enqueued.
type Option func(*options)

type options struct {
	queue    string
	maxRetry *int
	timeout  time.Duration
	unique   time.Duration
	delay    time.Duration
	id       string
}

// Queue puts the task on a logical queue (QueuePremium, QueueDefault,
// QueueLow) instead of the one chosen by the tenant's tier.
func Queue(logical string) Option { return func(o *options) { o.queue = logical } }

// MaxRetry sets how often a failing task is retried before it is archived.
func MaxRetry(n int) Option { return func(o *options) { o.maxRetry = &n } }

// Timeout bounds one attempt; the handler's context is cancelled after it.
func Timeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// Unique refuses an identical task (same tenant, type, payload and queue)
// while one is queued, for at most window (≥ 1 s).
func Unique(window time.Duration) Option { return func(o *options) { o.unique = window } }

// Delay runs the task no earlier than d from now.
func Delay(d time.Duration) Option { return func(o *options) { o.delay = d } }

// ID names the task; it is namespaced by the tenant, so two tenants may use
// the same id. While a task with the id exists, another is refused.
func ID(id string) Option { return func(o *options) { o.id = id } }

func collect(defaults, opts []Option) options {
	var o options
	for _, f := range defaults {
		f(&o)
	}
	for _, f := range opts {
		f(&o)
	}
	return o
}

// asynqOptions translates o for a task of tenant t (nil for a system task).
func (o options) asynqOptions(prefix string, t *tenancy.Tenant) ([]asynq.Option, error) {
	q := o.queue
	if q == "" {
		q = QueueDefault
		if t != nil && t.Tier == tenancy.TierPremium {
			q = QueuePremium
		}
	}
	if _, ok := queueWeights[q]; !ok {
		// A task on a queue no worker listens to would wait forever.
		return nil, fmt.Errorf("unknown queue %q (want %s, %s or %s)", q, QueuePremium, QueueDefault, QueueLow)
	}
	out := []asynq.Option{asynq.Queue(QueueName(prefix, q))}
	if o.maxRetry != nil {
		out = append(out, asynq.MaxRetry(*o.maxRetry))
	}
	if o.timeout > 0 {
		out = append(out, asynq.Timeout(o.timeout))
	}
	if o.unique > 0 {
		out = append(out, asynq.Unique(o.unique))
	}
	if o.delay > 0 {
		out = append(out, asynq.ProcessIn(o.delay))
	}
	if o.id != "" {
		ns := "system"
		if t != nil {
			ns = t.ID.String()
		}
		out = append(out, asynq.TaskID(ns+":"+o.id))
	}
	return out, nil
}
