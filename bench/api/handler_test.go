package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/your-org/tenantkit/bench/internal/benchdb"
	tkhttp "github.com/your-org/tenantkit/internal/http"
	"github.com/your-org/tenantkit/internal/tenancy"
)

// BenchmarkHandlers serves the bench's requests in process, without HTTP
// connections: CPU time and allocations of each server's handler alone,
// steadier than req/s on a shared machine. Run it with -benchmem:
//
//	go test -run '^$' -bench Handlers -benchmem ./bench/api
func BenchmarkHandlers(b *testing.B) {
	ctx := context.Background()
	db, err := benchdb.Fresh(ctx, benchdb.EnvOr("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"),
		"tenantkit_bench_handlers", "tenantkit_app")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(db.Close)
	tn, err := seed(ctx, db, options{rows: 20, noise: 5})
	if err != nil {
		b.Fatal(err)
	}
	cfg := serveConfig{AppURL: db.AppURL, OwnerURL: db.OwnerURL, Schemas: map[uuid.UUID]string{},
		RedisURL: benchdb.EnvOr("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")}
	for _, t := range tn.all {
		cfg.Schemas[t.ID] = t.Schema()
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var closers []func()
	b.Cleanup(func() {
		for _, c := range closers {
			c()
		}
	})
	kit, stop, err := kitServer(cfg, quiet)
	closers = append(closers, stop)
	if err != nil {
		b.Fatal(err)
	}
	bareDB, err := ownerGORM(cfg.OwnerURL, &closers)
	if err != nil {
		b.Fatal(err)
	}
	bare := baseline(echo.New(), bareDB, cfg.Schemas)
	plumbing := baseline(tkhttp.NewPlain(quiet, prometheus.NewRegistry()), bareDB, cfg.Schemas)

	kitReq := func(t *tenancy.Tenant) *http.Request {
		tok, err := tenancy.SignHS("HS256", []byte(jwtSecret), "tenant_id", t.ID, time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		r := httptest.NewRequest(http.MethodGet, "/api/v1/projects", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		return r
	}
	baseReq := func(t *tenancy.Tenant) *http.Request {
		return httptest.NewRequest(http.MethodGet, "/projects/"+t.ID.String(), nil)
	}
	for _, tier := range []struct {
		name string
		t    *tenancy.Tenant
	}{{"rls", tn.rls}, {"schema", tn.schema}} {
		for _, srv := range []struct {
			name string
			h    http.Handler
			req  *http.Request
		}{{"bare", bare, baseReq(tier.t)}, {"plumbing", plumbing, baseReq(tier.t)}, {"kit", kit, kitReq(tier.t)}} {
			b.Run(tier.name+"/"+srv.name, func(b *testing.B) {
				b.ReportAllocs()
				b.SetParallelism(16) // requests in flight, as under load
				cpu := processCPU()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						w := httptest.NewRecorder()
						srv.h.ServeHTTP(w, srv.req.Clone(ctx))
						if w.Code != http.StatusOK {
							b.Errorf("status %d: %s", w.Code, w.Body)
							return
						}
					}
				})
				b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}

// processCPU is this process's user and system CPU time in nanoseconds.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
