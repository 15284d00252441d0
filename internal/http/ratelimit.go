package http

import (
	"math"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/golang-lru/v2/expirable"
	"github.com/labstack/echo/v4"
	"golang.org/x/time/rate"

	"github.com/your-org/tenantkit/internal/apperr"
	"github.com/your-org/tenantkit/internal/tenancy"
)

// RateLimit caps each tenant's requests per api process (a token bucket per
// tenant): one noisy tenant cannot starve the others. With N replicas a
// tenant gets up to N times the rate.
type RateLimit struct {
	PerSecond float64 // RATE_LIMIT_RPS; 0 disables
	Burst     int     // RATE_LIMIT_BURST
}

// limitTenants answers 429 rate_limited, with Retry-After, to a tenant over
// its rate. Buckets of idle tenants are forgotten after ten minutes.
func limitTenants(cfg RateLimit) echo.MiddlewareFunc {
	buckets := expirable.NewLRU[uuid.UUID, *rate.Limiter](100_000, nil, 10*time.Minute)
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			t, ok := tenancy.FromContext(c.Request().Context())
			if !ok {
				return next(c)
			}
			lim, ok := buckets.Get(t.ID)
			if !ok {
				lim = rate.NewLimiter(rate.Limit(cfg.PerSecond), cfg.Burst)
				buckets.Add(t.ID, lim)
			}
			r := lim.Reserve()
			if d := r.Delay(); d > 0 {
				r.Cancel()
				c.Response().Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(d.Seconds()))))
				return apperr.New(apperr.RateLimited, "tenant %s is over its request rate, retry later", t.Identifier)
			}
			return next(c)
		}
	}
}
