package cache

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/your-org/tenantkit/internal/tenancy"
)

// Metrics counts hits, misses and invalidations of every cache by cache
// ("tenants", "query", "app") and level ("memory", "redis"). Tenants are
// deliberately not a label: their number is unbounded.
type Metrics struct {
	reg                         prometheus.Registerer
	hits, misses, invalidations *prometheus.CounterVec
}

// NewMetrics registers the cache counters with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	vec := func(name, help string) *prometheus.CounterVec {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "tenantkit", Subsystem: "cache", Name: name, Help: help},
			[]string{"cache", "level"})
		reg.MustRegister(v)
		return v
	}
	return &Metrics{
		reg:           reg,
		hits:          vec("hits_total", "Lookups answered by a cache level."),
		misses:        vec("misses_total", "Lookups a cache level could not answer."),
		invalidations: vec("invalidations_total", "Entries (or whole levels) dropped or overwritten because of a write."),
	}
}

// Subscribed exports whether a cache receives invalidations from other
// processes (1) or runs degraded, trusting its memory only briefly (0).
func (m *Metrics) Subscribed(cache string, live func() bool) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "tenantkit", Subsystem: "cache", Name: "invalidations_subscribed",
		Help:        "1 while the cache receives invalidations published by other processes.",
		ConstLabels: prometheus.Labels{"cache": cache},
	}, func() float64 {
		if live() {
			return 1
		}
		return 0
	}))
}

// For returns the counters of one cache, as its consumers take them.
func (m *Metrics) For(cache string) tenancy.CacheMetrics {
	if m == nil {
		return nil
	}
	return &counters{
		hits:          m.hits.MustCurryWith(prometheus.Labels{"cache": cache}),
		misses:        m.misses.MustCurryWith(prometheus.Labels{"cache": cache}),
		invalidations: m.invalidations.MustCurryWith(prometheus.Labels{"cache": cache}),
	}
}

// counters resolves each (event, level) counter once: the memory-hit path
// runs on every request.
type counters struct {
	hits, misses, invalidations *prometheus.CounterVec
	resolved                    sync.Map // [2]string{event, level} → prometheus.Counter
}

func (c *counters) counter(vec *prometheus.CounterVec, event, level string) prometheus.Counter {
	k := [2]string{event, level}
	if v, ok := c.resolved.Load(k); ok {
		return v.(prometheus.Counter)
	}
	ctr := vec.WithLabelValues(level)
	c.resolved.Store(k, ctr)
	return ctr
}

func (c *counters) Hit(level string)  { c.counter(c.hits, "hit", level).Inc() }
func (c *counters) Miss(level string) { c.counter(c.misses, "miss", level).Inc() }
func (c *counters) Invalidation(level string) {
	c.counter(c.invalidations, "invalidation", level).Inc()
}
