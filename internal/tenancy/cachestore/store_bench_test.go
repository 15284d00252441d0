package cachestore_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/tenancy/cachestore"
	"github.com/your-org/tenantkit/internal/testenv"
)

// BenchmarkTenantResolution prints what resolving a request's tenant costs
// at each level of the cache: a warm in-process hit, a Redis hit (memory
// cold) and a database miss (both levels cold), next to Postgres without any
// cache and to a whole JWT resolution on a warm cache.
//
//	make bench-cache
func BenchmarkTenantResolution(b *testing.B) {
	d := testenv.Postgres(b)
	url, prefix := testenv.Redis(b)
	ctx := context.Background()
	ids := []uuid.UUID{d.Tenant(b, "bench-one", tenancy.TierStandard).ID, d.Tenant(b, "bench-two", tenancy.TierPremium).ID}
	store := &tenancy.PGStore{DB: d.App}
	rdb := redisClient(b, url)

	newCache := func(size int) *cachestore.Store {
		c := cachestore.New(cachestore.Config{Store: store, Redis: rdb, Prefix: prefix + ":", TTL: time.Minute, Size: size})
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { c.Run(rctx); close(done) }()
		b.Cleanup(func() { cancel(); <-done })
		for deadline := time.Now().Add(5 * time.Second); !c.Live(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				b.Fatal("cache did not subscribe")
			}
		}
		return c
	}
	lookup := func(b *testing.B, l tenancy.Lookup, id uuid.UUID) {
		if t, err := l.TenantByID(ctx, id); err != nil || t.ID != id {
			b.Fatalf("lookup: %v %v", t, err)
		}
	}
	perOp := map[string]time.Duration{}
	record := func(b *testing.B, name string) { perOp[name] = b.Elapsed() / time.Duration(b.N) }

	b.Run("memory_hit", func(b *testing.B) {
		c := newCache(0)
		lookup(b, c, ids[0])
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			lookup(b, c, ids[0])
		}
		record(b, "memory_hit")
	})
	b.Run("redis_hit", func(b *testing.B) {
		c := newCache(1) // two ids alternating through one slot: memory always misses
		lookup(b, c, ids[0])
		lookup(b, c, ids[1])
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			lookup(b, c, ids[i%2])
		}
		record(b, "redis_hit")
	})
	b.Run("database_miss", func(b *testing.B) {
		c := newCache(1)
		for i := 0; i < b.N; i++ {
			id := ids[i%2]
			b.StopTimer()
			if err := rdb.Del(ctx, prefix+":tenant:id:"+id.String()).Err(); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			lookup(b, c, id)
		}
		record(b, "database_miss")
	})
	b.Run("postgres_uncached", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			lookup(b, store, ids[i%2])
		}
		record(b, "postgres_uncached")
	})
	b.Run("jwt_request_memory_hit", func(b *testing.B) {
		c := newCache(0)
		res, err := tenancy.NewJWTResolver(tenancy.JWTConfig{Algorithm: "HS256", Secret: []byte(testenv.JWTSecret), TenantClaim: "tenant_id"}, c)
		if err != nil {
			b.Fatal(err)
		}
		req := httptest.NewRequest("GET", "/api/v1/projects", nil)
		req.Header.Set("Authorization", "Bearer "+testenv.Token(b, ids[0].String()))
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := res.Resolve(req); err != nil {
				b.Fatal(err)
			}
		}
		record(b, "jwt_request_memory_hit")
	})

	if len(perOp) == 0 {
		return
	}
	names := make([]string, 0, len(perOp))
	for n := range perOp {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return perOp[names[i]] < perOp[names[j]] })
	fmt.Fprintln(os.Stdout, "\ntenant resolution cost per request (TenantByID unless noted):")
	for _, n := range names {
		line := fmt.Sprintf("  %-24s %10s", n, perOp[n])
		if m := perOp["memory_hit"]; m > 0 {
			line += fmt.Sprintf("  %8.1fx memory hit", float64(perOp[n])/float64(m))
		}
		if p := perOp["postgres_uncached"]; p > 0 {
			line += fmt.Sprintf("  %6.3fx postgres", float64(perOp[n])/float64(p))
		}
		fmt.Fprintln(os.Stdout, line)
	}
}
