package app

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"

	"github.com/your-org/tenantkit/internal/cache"
	tkhttp "github.com/your-org/tenantkit/internal/http"
	"github.com/your-org/tenantkit/internal/querycache"
	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/tenancy/cachestore"
)

// Store is the Postgres tenant store (a *tenancy.PGStore), as every
// consumer takes it.
type Store interface {
	cachestore.Source
	tenancy.Lookup
	tenancy.Registry
	tkhttp.AdminStore
}

// CacheConfig configures Tenants.
type CacheConfig struct {
	Enabled  bool          // CACHE_ENABLED
	TTL      time.Duration // CACHE_TTL
	Prefix   string        // of Redis keys and channels: tenancy.CacheNamespace(DATABASE_URL)
	Store    Store
	Redis    *redis.Client
	DB       *gorm.DB // gets the query-cache plugin
	Log      *slog.Logger
	Registry prometheus.Registerer
}

// TenantStores is the tenant store as each consumer takes it.
type TenantStores struct {
	Lookup tenancy.Lookup
	Writes tenancy.Registry
	Admin  tkhttp.AdminStore
	// Queries is the query cache, nil when caches are off: deleting a
	// tenant orphans its entries.
	Queries tenancy.QueryCacheInvalidator
}

// Tenants wires the tenant cache and the query-cache plugin when enabled
// (Postgres only otherwise). The subscription that applies other processes'
// invalidations runs until release, which waits for it to stop.
func Tenants(ctx context.Context, cfg CacheConfig) (stores TenantStores, release func(), err error) {
	if !cfg.Enabled {
		return TenantStores{Lookup: cfg.Store, Writes: cfg.Store, Admin: cfg.Store}, func() {}, nil
	}
	m := cache.NewMetrics(cfg.Registry)
	cs := cachestore.New(cachestore.Config{Store: cfg.Store, Redis: cfg.Redis, Prefix: cfg.Prefix, TTL: cfg.TTL,
		Log: cfg.Log, Metrics: m.For("tenants")})
	m.Subscribed("tenants", cs.Live)
	qc := querycache.New(querycache.Config{Cacher: querycache.RedisCacher{Redis: cfg.Redis, Prefix: cfg.Prefix},
		TTL: cfg.TTL, Log: cfg.Log, Metrics: m.For("query")})
	if err := cfg.DB.Use(qc); err != nil {
		return TenantStores{}, nil, fmt.Errorf("query cache: %w", err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { cs.Run(runCtx); close(done) }()
	return TenantStores{Lookup: cs, Writes: cs, Admin: cs, Queries: qc}, func() { stop(); <-done }, nil
}
