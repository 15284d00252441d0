package tasks

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics label by task type and outcome, never by tenant: series stay
// bounded however many tenants there are.
type Metrics struct {
	processed *prometheus.CounterVec
	refused   *prometheus.CounterVec
	duration  *prometheus.HistogramVec
}

// Outcomes of a task attempt.
const (
	OutcomeSucceeded = "succeeded"
	OutcomeFailed    = "failed"
	OutcomeRefused   = "refused"
)

// NewMetrics registers the task metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		processed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tasks_processed_total", Help: "Task attempts by type and outcome (succeeded, failed, refused).",
		}, []string{"type", "outcome"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tasks_refused_total", Help: "Tasks refused without retry, by type and reason (no_tenant, unknown_tenant, tenant_inactive).",
		}, []string{"type", "reason"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "task_duration_seconds", Help: "Task attempt latency by type.", Buckets: prometheus.DefBuckets,
		}, []string{"type"}),
	}
	reg.MustRegister(m.processed, m.refused, m.duration)
	return m
}

func (m *Metrics) observe(typ, outcome, reason string, d time.Duration) {
	if m == nil {
		return
	}
	m.processed.WithLabelValues(typ, outcome).Inc()
	if reason != "" {
		m.refused.WithLabelValues(typ, reason).Inc()
	}
	m.duration.WithLabelValues(typ).Observe(d.Seconds())
}
