package http

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/your-org/tenantkit/internal/apperr"
	"github.com/your-org/tenantkit/internal/logging"
	"github.com/your-org/tenantkit/internal/tenancy"
)

const headerRequestID = "X-Request-ID"

// requestContext gives each request an id (kept from a sane incoming
// X-Request-ID) and a logger carrying it, then writes one access log line.
func requestContext(log *slog.Logger, m *httpMetrics) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			req := c.Request()
			path := req.URL.Path // before the path strategy strips its prefix
			id := req.Header.Get(headerRequestID)
			if !validRequestID(id) {
				id = newRequestID()
			}
			c.Response().Header().Set(headerRequestID, id)
			c.SetRequest(req.WithContext(logging.WithAttrs(req.Context(), log, slog.String("request_id", id))))

			err := next(c)
			if err != nil {
				c.Error(err) // render now so the status below is the final one
			}
			status := c.Response().Status
			route := c.Path()
			if !m.known(route) {
				route = "unmatched"
			}
			m.observe(metricMethod(req.Method), route, status, time.Since(start))
			// The context of a tenant-bound request already carries tenant_id.
			logging.Log(c.Request().Context(), log, slog.LevelInfo, "request",
				slog.String("method", req.Method), slog.String("path", path), slog.String("route", route),
				slog.Int("status", status), slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
				slog.Int64("bytes", c.Response().Size))
			return nil
		}
	}
}

// metricMethod keeps the method label in a closed set (invariant 11):
// anyone may send any token as a method, and each new label value would be
// a series kept for the life of the process.
func metricMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "OTHER"
}

func validRequestID(id string) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for _, r := range id {
		if r < 0x21 || r > 0x7e {
			return false
		}
	}
	return true
}

func newRequestID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// recoverPanics turns a panic into a 500 problem and a logged stack.
func recoverPanics(log *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) (err error) {
			defer func() {
				if r := recover(); r != nil {
					if r == http.ErrAbortHandler {
						panic(r)
					}
					logging.From(c.Request().Context(), log).Error("panic", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
					err = apperr.New(apperr.Internal, "internal error")
				}
			}()
			return next(c)
		}
	}
}

// limitBody refuses bodies over MaxBodyBytes: early from Content-Length, and
// while reading for chunked bodies.
func limitBody(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		if isImport(req) { // tenant archives: admin only, streamed into the database
			return next(c)
		}
		if req.ContentLength > MaxBodyBytes {
			return apperr.New(apperr.PayloadTooLarge, "request body exceeds 1 MiB")
		}
		req.Body = http.MaxBytesReader(c.Response(), req.Body, MaxBodyBytes)
		return next(c)
	}
}

// tenantBinding adapts the net/http tenancy middleware to Echo. It runs
// before routing, so the path strategy's prefix is stripped before the
// router sees the path.
func tenantBinding(m *tenancy.Middleware) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			if m.Skips(req) {
				return next(c)
			}
			bound, err := m.Bind(req)
			if err != nil {
				return err
			}
			if t, ok := tenancy.FromContext(bound.Context()); ok {
				bound = bound.WithContext(logging.WithAttrs(bound.Context(), slog.Default(), slog.String("tenant_id", t.ID.String())))
			}
			// Echo routes on the original request's URL: rewrite it in place
			// (as Echo's own rewrite middleware does) for the path strategy.
			req.URL.Path, req.URL.RawPath = bound.URL.Path, bound.URL.RawPath
			c.SetRequest(bound)
			return next(c)
		}
	}
}

type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	// routes are the registered route patterns, read once the server runs
	// (every route is registered by then): on a miss Echo reports the
	// pattern of the nearest node of its tree, which is no route.
	routes func() map[string]bool
}

func (m *httpMetrics) known(route string) bool {
	return route != "" && m.routes != nil && m.routes()[route]
}

// newHTTPMetrics labels by route pattern, never by tenant or raw path, so
// series stay bounded however many tenants there are.
func newHTTPMetrics(reg prometheus.Registerer, e *echo.Echo) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_requests_total", Help: "HTTP requests by method, route pattern and status.",
		}, []string{"method", "route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "http_request_duration_seconds", Help: "HTTP request latency by method and route pattern.",
			Buckets: prometheus.DefBuckets,
		}, []string{"method", "route"}),
	}
	m.routes = sync.OnceValue(func() map[string]bool {
		known := map[string]bool{}
		for _, r := range e.Routes() {
			known[r.Path] = true
		}
		return known
	})
	reg.MustRegister(m.requests, m.duration)
	return m
}

func (m *httpMetrics) observe(method, route string, status int, d time.Duration) {
	m.requests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(method, route).Observe(d.Seconds())
}
