package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"

	"github.com/your-org/tenantkit/internal/cache"
	"github.com/your-org/tenantkit/internal/config"
	tkhttp "github.com/your-org/tenantkit/internal/http"
	"github.com/your-org/tenantkit/internal/querycache"
	"github.com/your-org/tenantkit/internal/tenancy"
)

// registry is the tenant store as each consumer takes it: cached (and
// invalidated across processes) when CACHE_ENABLED, Postgres otherwise.
type registry struct {
	lookup tenancy.Lookup
	writes tenancy.Registry
	admin  tkhttp.AdminStore
	// queries is the query cache, nil when caches are off: deleting a
	// tenant orphans its entries.
	queries tenancy.QueryCacheInvalidator
	prefix  string // Redis key namespace of this deployment
}

// cachedRegistry wires the tenant cache and the query-cache plugin; the
// subscription that applies other processes' invalidations runs until ctx ends.
func cachedRegistry(ctx context.Context, cfg config.Config, store *tenancy.PGStore, rdb *redis.Client, gdb *gorm.DB,
	log *slog.Logger, reg prometheus.Registerer) (registry, error) {
	prefix, err := tenancy.CacheNamespace(cfg.DatabaseURL)
	if err != nil {
		return registry{}, err
	}
	if !cfg.CacheEnabled {
		return registry{lookup: store, writes: store, admin: store, prefix: prefix}, nil
	}
	m := cache.NewMetrics(reg)
	cs := tenancy.NewCachedStore(tenancy.CacheConfig{Store: store, Redis: rdb, Prefix: prefix, TTL: cfg.CacheTTL,
		Log: log, Metrics: m.For("tenants")})
	m.Subscribed("tenants", cs.Live)
	go cs.Run(ctx)
	qc := querycache.New(querycache.Config{Cacher: querycache.RedisCacher{Redis: rdb, Prefix: prefix},
		TTL: cfg.CacheTTL, Log: log, Metrics: m.For("query")})
	if err := gdb.Use(qc); err != nil {
		return registry{}, fmt.Errorf("query cache: %w", err)
	}
	return registry{lookup: cs, writes: cs, admin: cs, queries: qc, prefix: prefix}, nil
}

// redisReady reports Redis as degraded, not down: without it the api still
// serves, from Postgres.
func redisReady(rdb *redis.Client) func(context.Context) error {
	return func(ctx context.Context) error {
		if err := rdb.Ping(ctx).Err(); err != nil {
			return fmt.Errorf("%w: %v", tkhttp.ErrDegraded, err)
		}
		return nil
	}
}
