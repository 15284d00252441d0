package cache_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/your-org/tenantkit/internal/cache"
	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/testenv"
)

func setup(t *testing.T) (*cache.Tenant, *redis.Client, string) {
	t.Helper()
	url, prefix := testenv.Redis(t)
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	return cache.New(cache.Config{Redis: rdb, Prefix: prefix + ":"}), rdb, prefix + ":"
}

func as(id string) context.Context {
	return tenancy.WithTenant(context.Background(), &tenancy.Tenant{ID: uuid.MustParse(id), Identifier: "x"})
}

const (
	idA = "00000000-0000-4000-8000-00000000000a"
	idB = "00000000-0000-4000-8000-00000000000b"
)

func TestTenantCache_SameKeyIsSeparatePerTenant(t *testing.T) {
	t.Parallel()
	c, rdb, prefix := setup(t)
	ctx := context.Background()
	if err := c.Set(as(idA), "plan", "alpha", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(as(idB), "plan", "beta", time.Minute); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]string{idA: "alpha", idB: "beta"} {
		var got string
		if ok, err := c.Get(as(id), "plan", &got); err != nil || !ok || got != want {
			t.Fatalf("tenant %s got %q %v %v, want %q", id, got, ok, err, want)
		}
	}
	keys, err := rdb.Keys(ctx, prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if !strings.Contains(k, idA) && !strings.Contains(k, idB) {
			t.Fatalf("key %q carries no tenant id", k)
		}
	}
	if ttl := rdb.PTTL(ctx, keys[0]).Val(); ttl <= 0 || ttl > time.Minute {
		t.Fatalf("ttl %s, want (0, 1m]", ttl)
	}
}

func TestTenantCache_NoTenantIsAnError(t *testing.T) {
	t.Parallel()
	c, _, _ := setup(t)
	ctx := context.Background()
	var v string
	_, getErr := c.Get(ctx, "k", &v)
	_, gocErr := cache.GetOrCompute(ctx, c, "k", time.Minute, func(context.Context) (string, error) { return "x", nil })
	for name, err := range map[string]error{
		"get": getErr, "set": c.Set(ctx, "k", "v", time.Minute), "delete": c.Delete(ctx, "k"),
		"flush": c.Flush(ctx), "get-or-compute": gocErr,
	} {
		if !errors.Is(err, cache.ErrNoTenant) {
			t.Errorf("%s without tenant: %v, want ErrNoTenant", name, err)
		}
	}
	disabled := cache.New(cache.Config{Disabled: true})
	if err := disabled.Set(ctx, "k", "v", time.Minute); !errors.Is(err, cache.ErrNoTenant) {
		t.Errorf("disabled cache set without tenant: %v, want ErrNoTenant", err)
	}
}

func TestTenantCache_FlushRemovesOnlyThatTenantsKeys(t *testing.T) {
	t.Parallel()
	c, _, _ := setup(t)
	for i := range 1200 { // more than one SCAN/UNLINK batch
		if err := c.Set(as(idA), "k"+string(rune('a'+i%26))+uuid.NewString(), i, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{idA, idB} {
		if err := c.Set(as(id), "keep-or-not", id, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Flush(as(idA)); err != nil {
		t.Fatal(err)
	}
	var v string
	if ok, _ := c.Get(as(idA), "keep-or-not", &v); ok {
		t.Fatal("tenant A's key survived its flush")
	}
	if ok, _ := c.Get(as(idB), "keep-or-not", &v); !ok || v != idB {
		t.Fatalf("tenant B's key was flushed with A's: %q %v", v, ok)
	}
	if err := c.Delete(as(idB), "keep-or-not"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.Get(as(idB), "keep-or-not", &v); ok {
		t.Fatal("deleted key still there")
	}
}

func TestTenantCache_GetOrComputeComputesOnceAndCountsHits(t *testing.T) {
	t.Parallel()
	url, prefix := testenv.Redis(t)
	opt, _ := redis.ParseURL(url)
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	reg := prometheus.NewRegistry()
	m := cache.NewMetrics(reg)
	c := cache.New(cache.Config{Redis: rdb, Prefix: prefix + ":", Metrics: m.For("app")})
	var calls atomic.Int32
	compute := func(context.Context) ([]string, error) {
		calls.Add(1)
		time.Sleep(50 * time.Millisecond) // keeps the computation in flight while the others arrive
		return []string{"expensive"}, nil
	}
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			v, err := cache.GetOrCompute(as(idA), c, "report", time.Minute, compute)
			if err != nil || len(v) != 1 || v[0] != "expensive" {
				t.Errorf("got %v, %v", v, err)
			}
		})
	}
	wg.Wait()
	v, err := cache.GetOrCompute(as(idA), c, "report", time.Minute, compute)
	if err != nil || v[0] != "expensive" {
		t.Fatalf("got %v, %v", v, err)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("computed %d times, want 1", n)
	}
	other, _ := cache.GetOrCompute(as(idB), c, "report", time.Minute, func(context.Context) ([]string, error) {
		return []string{"b's own"}, nil
	})
	if other[0] != "b's own" {
		t.Fatalf("tenant B got %v", other)
	}
	if hits := counterSum(t, reg, "tenantkit_cache_hits_total"); hits < 1 {
		t.Fatalf("hits counted %v, want >= 1", hits)
	}
}

func TestTenantCache_RedisDownGetOrComputeStillAnswers(t *testing.T) {
	t.Parallel()
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	t.Cleanup(func() { dead.Close() })
	c := cache.New(cache.Config{Redis: dead})
	v, err := cache.GetOrCompute(as(idA), c, "k", time.Minute, func(context.Context) (int, error) { return 42, nil })
	if err != nil || v != 42 {
		t.Fatalf("got %v, %v", v, err)
	}
}

// counterSum adds up every series of a counter family of reg.
func counterSum(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}
