package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/your-org/tenantkit/internal/testenv"
	"github.com/your-org/tenantkit/internal/testenv/redisproc"
)

// cacheAPI is one api process: run() on its own port, sharing the database
// and Redis with the others.
type cacheAPI struct{ url string }

func startCacheAPI(t *testing.T, d *testenv.DB, redisURL string, extra ...string) cacheAPI {
	t.Helper()
	env := map[string]string{
		"DATABASE_URL": d.AppURL, "MIGRATE_DATABASE_URL": d.OwnerURL, "REDIS_URL": redisURL,
		"HTTP_ADDR": "127.0.0.1:0", "ADMIN_TOKEN": testenv.AdminToken, "JWT_SECRET": testenv.JWTSecret,
		"TENANCY_RESOLUTION_STRATEGY": "jwt,api_key", "LOG_LEVEL": "error", "DB_POOL_SIZE": "4", "DB_MAX_OVERFLOW": "4",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		env[extra[i]] = extra[i+1]
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, nil, func(k string) string { return env[k] }, io.Discard, ready) }()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("api stopped with %v", err)
		}
	})
	select {
	case addr := <-ready:
		return cacheAPI{url: "http://" + addr}
	case err := <-errc:
		t.Fatalf("api did not start: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("api did not start within 30s")
	}
	return cacheAPI{}
}

type cacheResp struct {
	status int
	body   []byte
}

func (r cacheResp) code() string {
	var p struct{ Code string }
	_ = json.Unmarshal(r.body, &p)
	return p.Code
}

func (a cacheAPI) do(t *testing.T, method, path string, body any, headers ...string) cacheResp {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, a.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return cacheResp{status: res.StatusCode, body: b}
}

func (a cacheAPI) must(t *testing.T, want int, method, path string, body any, headers ...string) cacheResp {
	t.Helper()
	r := a.do(t, method, path, body, headers...)
	if r.status != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, r.status, r.body, want)
	}
	return r
}

var asAdmin = []string{"Authorization", "Bearer " + testenv.AdminToken}

func asJWT(t *testing.T, id string) []string {
	return []string{"Authorization", "Bearer " + testenv.Token(t, id)}
}

func createCacheTenant(t *testing.T, a cacheAPI, identifier, tier string) string {
	t.Helper()
	var tn struct{ ID string }
	json.Unmarshal(a.must(t, 201, "POST", "/admin/v1/tenants", map[string]string{"identifier": identifier, "name": identifier, "tier": tier}, asAdmin...).body, &tn)
	return tn.ID
}

// eventually polls until cond holds, failing once within has passed since
// the write it follows.
func eventually(t *testing.T, since time.Time, within time.Duration, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		if time.Since(since) > within {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAPI_SuspensionAndKeyRevocationReachOtherProcessWithin2s(t *testing.T) {
	t.Parallel()
	srv := redisproc.Start(t)
	d := testenv.Postgres(t)
	api1, api2 := startCacheAPI(t, d, srv.URL()), startCacheAPI(t, d, srv.URL())
	id := createCacheTenant(t, api1, "two-procs", "standard")
	var key struct{ ID, Key string }
	json.Unmarshal(api1.must(t, 201, "POST", "/admin/v1/tenants/"+id+"/api-keys", map[string]string{"name": "ci"}, asAdmin...).body, &key)
	for range 2 { // warm api2's caches
		api2.must(t, 200, "GET", "/api/v1/tenant", nil, asJWT(t, id)...)
		api2.must(t, 200, "GET", "/api/v1/tenant", nil, "X-API-Key", key.Key)
	}

	api1.must(t, 204, "DELETE", "/admin/v1/tenants/"+id+"/api-keys/"+key.ID, nil, asAdmin...)
	revoked := time.Now()
	eventually(t, revoked, 2*time.Second, "api2 refuses the revoked key", func() bool {
		r := api2.do(t, "GET", "/api/v1/tenant", nil, "X-API-Key", key.Key)
		return r.status == 401 && r.code() == "invalid_credentials"
	})

	api1.must(t, 200, "PATCH", "/admin/v1/tenants/"+id, map[string]string{"status": "suspended"}, asAdmin...)
	suspended := time.Now()
	eventually(t, suspended, 2*time.Second, "api2 refuses the suspended tenant", func() bool {
		r := api2.do(t, "GET", "/api/v1/tenant", nil, asJWT(t, id)...)
		return r.status == 403 && r.code() == "tenant_suspended"
	})
	api1.must(t, 403, "GET", "/api/v1/tenant", nil, asJWT(t, id)...)
}

func subscribed(t *testing.T, a cacheAPI) bool {
	return strings.Contains(string(a.do(t, "GET", "/metrics", nil).body), `tenantkit_cache_invalidations_subscribed{cache="tenants"} 1`)
}

func TestAPI_RedisDownKeepsServingAndInvalidationsResumeAfterRestart(t *testing.T) {
	t.Parallel()
	srv := redisproc.Start(t)
	d := testenv.Postgres(t)
	api1, api2 := startCacheAPI(t, d, srv.URL()), startCacheAPI(t, d, srv.URL())
	seen := createCacheTenant(t, api1, "seen-co", "premium")
	unseen := createCacheTenant(t, api1, "unseen-co", "standard")
	api1.must(t, 201, "POST", "/api/v1/projects", map[string]string{"name": "survives"}, asJWT(t, seen)...)
	api2.must(t, 200, "GET", "/api/v1/projects", nil, asJWT(t, seen)...)

	srv.Stop()
	for _, a := range []cacheAPI{api1, api2} {
		for range 3 {
			r := a.must(t, 200, "GET", "/api/v1/projects", nil, asJWT(t, seen)...)
			if !strings.Contains(string(r.body), "survives") {
				t.Fatalf("with Redis down: %s", r.body)
			}
			a.must(t, 200, "GET", "/api/v1/tenant", nil, asJWT(t, unseen)...)
		}
	}
	var ready struct {
		Status string
		Checks map[string]string
	}
	r := api2.do(t, "GET", "/ready", nil)
	json.Unmarshal(r.body, &ready)
	if r.status != 503 || ready.Checks["redis"] != "degraded" || ready.Checks["postgres"] != "ok" {
		t.Fatalf("/ready with Redis down: %d %s", r.status, r.body)
	}

	srv.Restart()
	eventually(t, time.Now(), 10*time.Second, "both apis resubscribe by themselves", func() bool {
		return subscribed(t, api1) && subscribed(t, api2)
	})
	api2.must(t, 200, "GET", "/api/v1/tenant", nil, asJWT(t, seen)...) // cached again, trusted while subscribed
	api1.must(t, 200, "PATCH", "/admin/v1/tenants/"+seen, map[string]string{"status": "suspended"}, asAdmin...)
	suspended := time.Now()
	eventually(t, suspended, 2*time.Second, "api2 refuses the tenant suspended after Redis came back", func() bool {
		r := api2.do(t, "GET", "/api/v1/tenant", nil, asJWT(t, seen)...)
		return r.status == 403 && r.code() == "tenant_suspended"
	})
	api2.must(t, 200, "GET", "/ready", nil)
}

func TestAPI_CacheDisabledLeavesRedisUntouched(t *testing.T) {
	t.Parallel()
	srv := redisproc.Start(t)
	d := testenv.Postgres(t)
	api := startCacheAPI(t, d, srv.URL(), "CACHE_ENABLED", "false")
	id := createCacheTenant(t, api, "no-cache", "standard")
	api.must(t, 200, "GET", "/api/v1/tenant", nil, asJWT(t, id)...)
	api.must(t, 200, "GET", "/api/v1/projects", nil, asJWT(t, id)...)
	opt, _ := redis.ParseURL(srv.URL())
	c := redis.NewClient(opt)
	defer c.Close()
	if n, err := c.DBSize(context.Background()).Result(); err != nil || n != 0 {
		t.Fatalf("Redis holds %d keys (%v) with CACHE_ENABLED=false", n, err)
	}
	if strings.Contains(string(api.do(t, "GET", "/metrics", nil).body), "tenantkit_cache_") {
		t.Fatal("cache metrics exported with caches disabled")
	}
}
