package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/your-org/tenantkit/internal/app"
	"github.com/your-org/tenantkit/internal/apperr"
	"github.com/your-org/tenantkit/internal/audit"
	tkhttp "github.com/your-org/tenantkit/internal/http"
	"github.com/your-org/tenantkit/internal/tasks"
	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/tenantdata"
	"github.com/your-org/tenantkit/internal/tenantmove"
)

// Test credentials of every Stack.
const (
	JWTSecret  = "test-secret-test-secret-test-secret-0123"
	AdminToken = "test-admin-token-test-admin-token-0123"
)

// StackOptions change the defaults of NewStack.
type StackOptions struct {
	Strategies []string          // default jwt,api_key
	JWT        tenancy.JWTConfig // default HS256 with JWTSecret
	Resolution tenancy.ResolutionConfig
	Custom     map[string]tenancy.Resolver
	// Tasks enqueues the resources' tasks; default a tasks.Client on this
	// test's Redis queues (QueuePrefix in Stack.Queues).
	Tasks tasks.Enqueuer
	// CacheDisabled runs without the tenant cache and query cache, as
	// CACHE_ENABLED=false does; by default the stack caches as cmd/api does.
	CacheDisabled bool
	// AdminDisabled leaves ADMIN_TOKEN unset, as cmd/api does: /admin/v1 is 404.
	AdminDisabled bool
	// Placement of tenants the admin API creates; default hybrid by tier.
	Placement *tenancy.Placement
	RateLimit tkhttp.RateLimit
	// ActorHeader is the admin audit actor header (ADMIN_ACTOR_HEADER).
	ActorHeader string
	// MoveQueue receives the moves the admin API starts; nil disables the
	// move and operations routes.
	MoveQueue tenantmove.Enqueuer
	AutoMove  bool              // TENANCY_AUTO_MOVE
	TierRule  *tenancy.TierRule // TENANCY_PREMIUM_RULE
	// AllowUnauthenticated lets a chain of identifiers only start.
	AllowUnauthenticated bool
	// AuthFailureBurst and AuthFailureRPS configure the failure throttle;
	// default the production defaults (50, 1/s).
	AuthFailureBurst int
	AuthFailureRPS   float64
	// Store replaces the Postgres store under the tenant cache (e.g. one
	// that counts lookups).
	Store app.Store
}

// Stack is the api's HTTP stack over a fresh database, wired as cmd/api does:
// the same resources (internal/app), tenant cache and query cache on Redis.
type Stack struct {
	*DB
	URL    string
	Server *httptest.Server
	Store  *tenancy.PGStore
	// Tenants is the tenant store the stack resolves and administers through
	// (the cached store unless CacheDisabled).
	Tenants app.TenantStores
	// RedisURL and Prefix locate the stack's Redis keys and task queues.
	RedisURL, Prefix string
}

// NewStack starts the full HTTP stack (tenancy middleware, GORM isolation,
// admin API) on a fresh database.
func NewStack(t testing.TB, opts StackOptions) *Stack {
	t.Helper()
	d := Postgres(t)
	return NewStackOn(t, d, opts)
}

// NewStackOn starts the HTTP stack over an existing test database.
func NewStackOn(t testing.TB, d *DB, opts StackOptions) *Stack {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	// Routed as cmd/api routes: by the tenant's cell, or its own database.
	pools := d.Pools(t)
	gdb, err := tenancy.OpenGORM(pools, log)
	if err != nil {
		t.Fatal(err)
	}
	store := &tenancy.PGStore{DB: d.App}
	var base app.Store = store
	if opts.Store != nil {
		base = opts.Store
	}
	redisURL, prefix := Redis(t)
	ropt, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(ropt)
	t.Cleanup(func() { _ = rdb.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	reg := prometheus.NewRegistry() // one registry, as cmd/api: /metrics shows the caches
	tenants, release, err := app.Tenants(ctx, app.CacheConfig{Enabled: !opts.CacheDisabled, TTL: 2 * time.Minute,
		Prefix: prefix + ":", Store: base, Redis: rdb, DB: gdb, Log: log, Registry: reg})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); release() })
	if opts.Tasks == nil {
		opts.Tasks = &tasks.Client{Asynq: asynq.NewClientFromRedisClient(rdb), QueuePrefix: prefix}
		// The Redis is shared: remove this stack's queues, nothing else.
		t.Cleanup(func() {
			in := asynq.NewInspectorFromRedisClient(rdb)
			for q := range tasks.Priorities(prefix) {
				_ = in.DeleteQueue(q, true)
			}
		})
	}
	rc := opts.Resolution
	rc.AllowUnauthenticated = rc.AllowUnauthenticated || opts.AllowUnauthenticated
	if len(opts.Strategies) > 0 {
		rc.Strategies = opts.Strategies
	}
	if len(rc.Strategies) == 0 {
		rc.Strategies = []string{"jwt", "api_key"}
	}
	if opts.JWT.Algorithm != "" {
		rc.JWT = opts.JWT
	}
	if rc.JWT.Algorithm == "" {
		rc.JWT = tenancy.JWTConfig{Algorithm: "HS256", Secret: []byte(JWTSecret), TenantClaim: "tenant_id", Leeway: time.Second}
	}
	if rc.Header == "" {
		rc.Header = "X-Tenant-ID"
	}
	if rc.PathPrefix == "" {
		rc.PathPrefix = "/t"
	}
	chain, err := tenancy.NewChain(rc, tenants.Lookup, opts.Custom)
	if err != nil {
		t.Fatal(err)
	}
	mw := &tenancy.Middleware{Resolver: chain, Skip: tkhttp.SkipPaths, Proxies: rc.Proxies,
		Failures: tenancy.NewFailureThrottle(opts.AuthFailureRPS, opts.AuthFailureBurst)}
	if rc.UsesPath() {
		mw.PathPrefix = rc.PathPrefix
	}
	var admin *tkhttp.Admin
	if !opts.AdminDisabled {
		life := d.Lifecycle()
		if opts.Placement != nil {
			life.Placement = *opts.Placement
		}
		life.Registry, life.QueryCache = tenants.Writes, tenants.Queries
		life.Destroyed = pools.Forget
		admin = &tkhttp.Admin{Token: AdminToken, Store: tenants.Admin, Lifecycle: life,
			Audit: &audit.Trail{DB: d.App}, ActorHeader: opts.ActorHeader}
		latest, err := d.Migrator().LatestTenantVersion()
		if err != nil {
			t.Fatal(err)
		}
		admin.Archive = &tenantdata.Archiver{Owner: d.Owner, LatestVersion: latest, TempDir: t.TempDir()}
		if opts.MoveQueue != nil {
			admin.Moves = &tenantmove.Service{DB: d.App, Queue: opts.MoveQueue}
		}
		admin.AutoMove, life.TierRule = opts.AutoMove, opts.TierRule
	}
	e := tkhttp.New(tkhttp.Config{
		Log: log, Tenancy: mw, Resources: app.Routes(app.Deps{DB: gdb, Tasks: opts.Tasks, Log: log}),
		Registry: reg,
		Ready:    pools.Ready(),
		Admin:    admin, RateLimit: opts.RateLimit, TrustedProxies: rc.Proxies,
	})
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return &Stack{DB: d, URL: srv.URL, Server: srv, Store: store, Tenants: tenants, RedisURL: redisURL, Prefix: prefix}
}

// Token signs an HS256 token for the tenant with the stack's secret.
func Token(t testing.TB, tenantID string) string {
	t.Helper()
	id, err := parseUUID(tenantID)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tenancy.SignHS("HS256", []byte(JWTSecret), "tenant_id", id, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Response is a decoded HTTP response.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v.
func (r Response) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// Code returns the problem code of an error response.
func (r Response) Code() apperr.Code {
	var p struct{ Code apperr.Code }
	_ = json.Unmarshal(r.Body, &p)
	return p.Code
}

// Do sends a request; body (if not nil) is sent as JSON. headers are pairs.
func (s *Stack) Do(t testing.TB, method, path string, body any, headers ...string) Response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		if raw, ok := body.([]byte); ok {
			rd = bytes.NewReader(raw)
		} else {
			b, err := json.Marshal(body)
			if err != nil {
				t.Fatal(err)
			}
			rd = bytes.NewReader(b)
		}
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := s.Server.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// AsTenant returns the Authorization header pair for tenant t.
func AsTenant(t testing.TB, tn *tenancy.Tenant) []string {
	return []string{"Authorization", "Bearer " + Token(t, tn.ID.String())}
}

// AsAdmin returns the Authorization header pair for the admin API.
func AsAdmin() []string { return []string{"Authorization", "Bearer " + AdminToken} }
