package tenancy

import (
	"fmt"

	"github.com/jackc/pgx/v5"
)

// CacheMetrics counts cache events by level; internal/cache provides the
// Prometheus implementation.
type CacheMetrics interface {
	Hit(level string)
	Miss(level string)
	Invalidation(level string)
}

// Cache levels as metrics label them.
const (
	LevelMemory = "memory"
	LevelRedis  = "redis"
)

// CacheNamespace is the Redis key and channel prefix of a deployment's caches,
// derived from its database: every api and worker on one database must share
// it (or invalidations would not reach them), and deployments sharing a Redis
// must not (their tenant ids and identifiers are unrelated).
func CacheNamespace(databaseURL string) (string, error) {
	c, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		return "", fmt.Errorf("cache namespace: parse database url: %w", err)
	}
	return "tenantkit:" + c.Database + ":", nil
}
