// Package http is the Echo v4 HTTP surface: routes, handlers, the Echo adapter
// of the tenancy middleware, problem+json errors, admin API, docs and metrics.
package http

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"net"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/your-org/tenantkit/internal/tenancy"
)

// Config holds the server's dependencies.
type Config struct {
	Log     *slog.Logger
	Tenancy *tenancy.Middleware
	// Resources are the tenant API's resources under /api/v1, from
	// internal/app.Resources (the one place they are registered).
	Resources  []Resource
	Admin      *Admin // nil disables /admin/v1 (404)
	Ready      map[string]func(context.Context) error
	Registry   *prometheus.Registry
	OpenAPI    []byte // served at /docs/openapi.json
	DocsHTML   []byte // served at /docs
	DocsAssets http.Handler
	RateLimit  RateLimit // per tenant; zero disables
	// TrustedProxies (TENANCY_TRUSTED_PROXIES) tell Echo's RealIP the client
	// address by the same rule as the tenancy middleware.
	TrustedProxies tenancy.TrustedProxies
}

// SkipPaths are never tenant-resolved.
var SkipPaths = []string{"/health", "/ready", "/metrics", "/docs", "/admin"}

// New builds the Echo server.
func New(cfg Config) *echo.Echo {
	e := NewPlain(cfg.Log, cfg.Registry)
	e.IPExtractor = IPExtractor(cfg.TrustedProxies)
	e.Pre(rejectHostileBytes(cfg.Tenancy), tenantBinding(cfg.Tenancy))
	checks := cfg.Ready
	if cfg.RateLimit.PerSecond > 0 {
		lim := newTenantLimiter(cfg.RateLimit, cfg.Log, cfg.Registry)
		e.Pre(limitTenants(lim))
		if cfg.RateLimit.Redis != nil {
			checks = maps.Clone(checks)
			if checks == nil {
				checks = map[string]func(context.Context) error{}
			}
			checks["rate_limit"] = lim.Ready
		}
	}

	e.GET("/health", func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]string{"status": "ok"}) })
	e.GET("/ready", ready(checks))
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{})))
	registerDocs(e, cfg)

	api := e.Group("/api/v1")
	api.GET("/tenant", currentTenant)
	for _, r := range cfg.Resources {
		r.Register(api)
	}
	if cfg.Admin != nil {
		cfg.Admin.register(e.Group("/admin/v1"), cfg.Tenancy)
	}
	return e
}

// NewPlain returns an Echo with the kit's request plumbing and no tenancy:
// request ids, access log, metrics, panic recovery, body limit and
// problem+json errors. New builds on it; the api benchmark's untenanted
// baseline uses it so that the comparison isolates what tenancy costs.
func NewPlain(log *slog.Logger, reg prometheus.Registerer) *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = errorHandler(log)
	e.JSONSerializer = newWholeJSON()
	e.Pre(requestContext(log, newHTTPMetrics(reg, e)), recoverPanics(log), limitBody)
	return e
}

// ErrDegraded marks a failed readiness check of a dependency the service runs
// on without, only slower (Redis: caches fall back to Postgres). /ready still
// answers 503, but names the check "degraded" instead of "unavailable".
var ErrDegraded = errors.New("degraded")

func ready(checks map[string]func(context.Context) error) echo.HandlerFunc {
	return func(c echo.Context) error {
		status, code := "ok", http.StatusOK
		results := map[string]string{}
		for name, check := range checks {
			if err := check(c.Request().Context()); err != nil {
				results[name] = "unavailable"
				if errors.Is(err, tenancy.ErrCellUnavailable) {
					// A cell other than the control plane's: only its tenants
					// get 503, so the process stays in rotation for the rest.
					if status == "ok" {
						status = "partial"
					}
					continue
				}
				if errors.Is(err, ErrDegraded) {
					results[name] = "degraded"
				}
				if status != "unavailable" {
					status = results[name]
				}
				code = http.StatusServiceUnavailable
				continue
			}
			results[name] = "ok"
		}
		return c.JSON(code, map[string]any{"status": status, "checks": results})
	}
}

// IPExtractor is Echo's X-Forwarded-For extractor trusting exactly
// proxies (none of Echo's default private ranges), which is the rule of
// tenancy.TrustedProxies.ClientIP.
func IPExtractor(proxies tenancy.TrustedProxies) echo.IPExtractor {
	if len(proxies) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, p := range proxies {
		opts = append(opts, echo.TrustIPRange(&net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

func registerDocs(e *echo.Echo, cfg Config) {
	if cfg.OpenAPI != nil {
		e.GET("/docs/openapi.json", func(c echo.Context) error { return c.Blob(http.StatusOK, "application/json", cfg.OpenAPI) })
	}
	if cfg.DocsHTML != nil {
		e.GET("/docs", func(c echo.Context) error {
			c.Response().Header().Set("Content-Security-Policy", DocsCSP)
			return c.HTMLBlob(http.StatusOK, cfg.DocsHTML)
		})
	}
	if cfg.DocsAssets != nil {
		e.GET("/docs/assets/*", echo.WrapHandler(http.StripPrefix("/docs/assets/", cfg.DocsAssets)))
	}
}
