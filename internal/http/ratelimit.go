package http

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/google/uuid"
	"github.com/hashicorp/golang-lru/v2/expirable"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"

	"github.com/your-org/tenantkit/internal/apperr"
	"github.com/your-org/tenantkit/internal/logging"
	"github.com/your-org/tenantkit/internal/tenancy"
)

// RateLimit caps each tenant's requests (RATE_LIMIT_RPS/BURST): one noisy
// tenant cannot starve the others. With Redis the limit is shared by every
// api process (GCRA in one round trip, github.com/go-redis/redis_rate);
// while Redis does not answer, each process falls back to its own token
// bucket per tenant (so N replicas allow up to N times the rate), reports
// "degraded" for the check "rate_limit" in /ready and sets the gauge
// tenantkit_rate_limit_degraded.
type RateLimit struct {
	PerSecond float64 // RATE_LIMIT_RPS; 0 disables
	Burst     int     // RATE_LIMIT_BURST
	// Redis shares the limit between processes; nil keeps it per process.
	Redis  redis.UniversalClient
	Prefix string // of the Redis keys, e.g. the cache namespace
}

const (
	rateRedisTimeout = 100 * time.Millisecond // a slow Redis must not stall every request
	rateRedisPause   = time.Second            // after a failure, skip Redis this long
)

// tenantLimiter decides per tenant, in Redis when it answers.
type tenantLimiter struct {
	cfg    RateLimit
	shared *redis_rate.Limiter
	limit  redis_rate.Limit
	local  *expirable.LRU[uuid.UUID, *rate.Limiter]

	degraded   atomic.Bool
	pauseUntil atomic.Int64 // unix nanos
	gauge      prometheus.Gauge
	log        *slog.Logger
}

func newTenantLimiter(cfg RateLimit, log *slog.Logger, reg prometheus.Registerer) *tenantLimiter {
	l := &tenantLimiter{cfg: cfg, log: log,
		local: expirable.NewLRU[uuid.UUID, *rate.Limiter](100_000, nil, 10*time.Minute),
		// Rate 1 per Period = 1/rps is exact for fractional rates too.
		limit: redis_rate.Limit{Rate: 1, Burst: cfg.Burst, Period: time.Duration(float64(time.Second) / cfg.PerSecond)},
		gauge: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tenantkit_rate_limit_degraded",
			Help: "1 while the per-tenant rate limit falls back to per-process buckets because Redis does not answer."}),
	}
	if cfg.Redis != nil {
		l.shared = redis_rate.NewLimiter(cfg.Redis)
	}
	if reg != nil {
		reg.MustRegister(l.gauge)
	}
	return l
}

// errRateDegraded is the /ready answer while the limit is per process.
var errRateDegraded = fmt.Errorf("%w: per-tenant rate limit is per process while Redis does not answer", ErrDegraded)

// Ready reports whether the limit is shared as configured.
func (l *tenantLimiter) Ready(context.Context) error {
	if l.degraded.Load() {
		return errRateDegraded
	}
	return nil
}

// allow returns zero when t may proceed, else how long it should wait.
func (l *tenantLimiter) allow(ctx context.Context, id uuid.UUID) time.Duration {
	if l.shared != nil && time.Now().UnixNano() >= l.pauseUntil.Load() {
		rctx, cancel := context.WithTimeout(ctx, rateRedisTimeout)
		res, err := l.shared.Allow(rctx, l.cfg.Prefix+"ratelimit:"+id.String(), l.limit)
		cancel()
		if err == nil {
			if l.degraded.Swap(false) {
				l.gauge.Set(0)
				l.log.Info("rate limit: shared through Redis again")
			}
			if res.Allowed > 0 {
				return 0
			}
			return max(res.RetryAfter, time.Millisecond)
		}
		if !errors.Is(ctx.Err(), context.Canceled) {
			l.pauseUntil.Store(time.Now().Add(rateRedisPause).UnixNano())
			if !l.degraded.Swap(true) {
				l.gauge.Set(1)
				l.log.Warn("rate limit: Redis does not answer, falling back to per-process buckets", "error", err)
			}
		}
	}
	lim, ok := l.local.Get(id)
	if !ok {
		lim = rate.NewLimiter(rate.Limit(l.cfg.PerSecond), l.cfg.Burst)
		l.local.Add(id, lim)
	}
	r := lim.Reserve()
	if d := r.Delay(); d > 0 {
		r.Cancel()
		return d
	}
	return 0
}

// limitTenants answers 429 rate_limited, with Retry-After, to a tenant over
// its rate.
func limitTenants(l *tenantLimiter) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			t, ok := tenancy.FromContext(c.Request().Context())
			if !ok {
				return next(c)
			}
			if wait := l.allow(c.Request().Context(), t.ID); wait > 0 {
				logging.From(c.Request().Context(), l.log).Debug("rate limited", "retry_after", wait)
				return apperr.Throttled(wait, "tenant %s is over its request rate, retry later", t.Identifier)
			}
			return next(c)
		}
	}
}
