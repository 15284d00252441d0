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
	"github.com/your-org/tenantkit/internal/querycache"
	"github.com/your-org/tenantkit/internal/tenancy"
)

// cachedLookup returns the tenant lookup tasks resolve through: when
// CACHE_ENABLED, the cached store, which applies the invalidations the api
// publishes (a suspension stops this worker's tasks within 2 s). It also
// installs the query-cache plugin, so that task writes bump their tenant's
// generation and the api never serves query results older than them.
// release stops the subscription and closes its Redis client after the worker stopped.
func cachedLookup(ctx context.Context, cfg config.Config, store *tenancy.PGStore, gdb *gorm.DB, log *slog.Logger,
	reg prometheus.Registerer) (lookup tenancy.Lookup, release func(), err error) {
	if !cfg.CacheEnabled {
		return store, func() {}, nil
	}
	prefix, err := tenancy.CacheNamespace(cfg.DatabaseURL)
	if err != nil {
		return nil, nil, err
	}
	opt, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, nil, fmt.Errorf("parse REDIS_URL: %w", err)
	}
	rdb := redis.NewClient(opt)
	m := cache.NewMetrics(reg)
	cs := tenancy.NewCachedStore(tenancy.CacheConfig{Store: store, Redis: rdb, Prefix: prefix, TTL: cfg.CacheTTL,
		Log: log, Metrics: m.For("tenants")})
	m.Subscribed("tenants", cs.Live)
	if err := gdb.Use(querycache.New(querycache.Config{Cacher: querycache.RedisCacher{Redis: rdb, Prefix: prefix},
		TTL: cfg.CacheTTL, Log: log, Metrics: m.For("query")})); err != nil {
		rdb.Close()
		return nil, nil, fmt.Errorf("query cache: %w", err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { cs.Run(runCtx); close(done) }()
	return cs, func() { stop(); <-done; rdb.Close() }, nil
}
