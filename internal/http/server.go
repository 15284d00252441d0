// Package http is the Echo v4 HTTP surface: routes, handlers, the Echo adapter
// of the tenancy middleware, problem+json errors, admin API, docs and metrics.
package http

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/your-org/tenantkit/internal/models"
	"github.com/your-org/tenantkit/internal/tenancy"
)

// Config holds the server's dependencies.
type Config struct {
	Log        *slog.Logger
	Tenancy    *tenancy.Middleware
	Projects   models.Projects
	Reports    ReportService // nil disables /api/v1/reports
	Admin      *Admin        // nil disables /admin/v1 (404)
	Ready      map[string]func(context.Context) error
	Registry   *prometheus.Registry
	OpenAPI    []byte // served at /docs/openapi.json
	DocsHTML   []byte // served at /docs
	DocsAssets http.Handler
	RateLimit  RateLimit // per tenant; zero disables
}

// SkipPaths are never tenant-resolved.
var SkipPaths = []string{"/health", "/ready", "/metrics", "/docs", "/admin"}

// New builds the Echo server.
func New(cfg Config) *echo.Echo {
	e := NewPlain(cfg.Log, cfg.Registry)
	e.Pre(tenantBinding(cfg.Tenancy))
	if cfg.RateLimit.PerSecond > 0 {
		e.Pre(limitTenants(cfg.RateLimit))
	}

	e.GET("/health", func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]string{"status": "ok"}) })
	e.GET("/ready", ready(cfg.Ready))
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{})))
	registerDocs(e, cfg)

	api := e.Group("/api/v1")
	api.GET("/tenant", currentTenant)
	p := projectHandlers{store: cfg.Projects}
	api.POST("/projects", p.create)
	api.GET("/projects", p.list)
	api.GET("/projects/:id", p.get)
	api.PATCH("/projects/:id", p.update)
	api.DELETE("/projects/:id", p.delete)
	if cfg.Reports != nil {
		r := reportHandlers{svc: cfg.Reports}
		api.POST("/reports", r.create)
		api.GET("/reports/:id", r.get)
	}
	if cfg.Admin != nil {
		cfg.Admin.register(e.Group("/admin/v1"))
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
	e.Pre(requestContext(log, newHTTPMetrics(reg)), recoverPanics(log), limitBody)
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
