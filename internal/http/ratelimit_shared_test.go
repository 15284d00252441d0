package http_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	tkhttp "github.com/your-org/tenantkit/internal/http"
	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/testenv"
)

func redisClient(t testing.TB, url string) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	return c
}

// Why row 9: two api stacks (two replicas) sharing one Redis give a tenant
// its limit once, not once per replica.
func TestRateLimit_SharedByReplicasThroughRedis(t *testing.T) {
	t.Parallel()
	url, prefix := testenv.Redis(t)
	d := testenv.Postgres(t)
	limit := tkhttp.RateLimit{PerSecond: 0.01, Burst: 4, Redis: redisClient(t, url), Prefix: prefix}
	api1 := testenv.NewStackOn(t, d, testenv.StackOptions{RateLimit: limit})
	api2 := testenv.NewStackOn(t, d, testenv.StackOptions{RateLimit: limit})
	tn := d.Tenant(t, "shared-limit", tenancy.TierStandard)
	other := d.Tenant(t, "other-limit", tenancy.TierPremium)
	h := testenv.AsTenant(t, tn)
	served := 0
	for i := range 4 {
		s := []*testenv.Stack{api1, api2}[i%2]
		if res := s.Do(t, "GET", "/api/v1/tenant", nil, h...); res.Status == http.StatusOK {
			served++
		}
	}
	if served != 4 {
		t.Fatalf("served %d of the burst of 4", served)
	}
	for _, s := range []*testenv.Stack{api1, api2} {
		res := s.Do(t, "GET", "/api/v1/tenant", nil, h...)
		requireProblem(t, "over the shared burst", res, 429, "rate_limited")
		if res.Header.Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
	}
	if res := api2.Do(t, "GET", "/api/v1/tenant", nil, testenv.AsTenant(t, other)...); res.Status != http.StatusOK {
		t.Errorf("another tenant: %d %s", res.Status, res.Body)
	}
	res := api1.Do(t, "GET", "/ready", nil)
	var ready struct{ Checks map[string]string }
	_ = json.Unmarshal(res.Body, &ready)
	if res.Status != http.StatusOK || ready.Checks["rate_limit"] != "ok" {
		t.Errorf("/ready with Redis up: %d %s", res.Status, res.Body)
	}
}

// Without Redis each process still limits (per process), and /ready and
// the metric say the limit is degraded.
func TestRateLimit_RedisDownFallsBackPerProcessAndSaysSo(t *testing.T) {
	t.Parallel()
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	t.Cleanup(func() { dead.Close() })
	s := testenv.NewStack(t, testenv.StackOptions{RateLimit: tkhttp.RateLimit{PerSecond: 0.01, Burst: 2, Redis: dead, Prefix: "x:"}})
	tn := s.Tenant(t, "fallback", tenancy.TierStandard)
	h := testenv.AsTenant(t, tn)
	for range 2 {
		if res := s.Do(t, "GET", "/api/v1/tenant", nil, h...); res.Status != http.StatusOK {
			t.Fatalf("within the burst with Redis down: %d %s", res.Status, res.Body)
		}
	}
	requireProblem(t, "over the burst with Redis down", s.Do(t, "GET", "/api/v1/tenant", nil, h...), 429, "rate_limited")
	res := s.Do(t, "GET", "/ready", nil)
	var ready struct{ Checks map[string]string }
	_ = json.Unmarshal(res.Body, &ready)
	if ready.Checks["rate_limit"] != "degraded" || ready.Checks["postgres"] != "ok" {
		t.Errorf("/ready: %d %s, want rate_limit degraded", res.Status, res.Body)
	}
	if !strings.Contains(string(s.Do(t, "GET", "/metrics", nil).Body), "tenantkit_rate_limit_degraded 1") {
		t.Error("metric tenantkit_rate_limit_degraded is not 1")
	}
}
