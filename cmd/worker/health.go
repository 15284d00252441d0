package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/your-org/tenantkit/internal/tenancy"
)

// healthServer serves /health, /ready and /metrics on the worker's own port,
// so orchestrators can probe a process that has no public HTTP surface.
type healthServer struct {
	srv  *http.Server
	errc chan error
}

func listenHealth(addr string, log *slog.Logger, reg *prometheus.Registry, checks map[string]func(context.Context) error) (*healthServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen WORKER_HTTP_ADDR %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
	})
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		status, code, results := "ok", http.StatusOK, map[string]string{}
		for name, check := range checks {
			results[name] = "ok"
			err := check(ctx)
			switch {
			case err == nil:
			case errors.Is(err, tenancy.ErrCellUnavailable): // another cell: only its tenants' tasks wait
				results[name] = "unavailable"
				if status == "ok" {
					status = "partial"
				}
			default:
				results[name], status, code = "unavailable", "unavailable", http.StatusServiceUnavailable
			}
		}
		writeJSON(w, code, map[string]any{"status": status, "checks": results})
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	h := &healthServer{
		srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second,
			ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)},
		errc: make(chan error, 1),
	}
	go func() {
		if err := h.srv.Serve(ln); err != http.ErrServerClosed {
			h.errc <- err
		}
	}()
	log.Info("worker http listening", "addr", ln.Addr().String())
	return h, nil
}

func (h *healthServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = h.srv.Shutdown(ctx)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
