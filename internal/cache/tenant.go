// Package cache gives application code a Redis cache in which every key
// belongs to the tenant of the call's context, and provides the Prometheus
// metrics of every cache of the kit.
package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"

	"github.com/your-org/tenantkit/internal/tenancy"
)

// Config configures New.
type Config struct {
	Redis  redis.UniversalClient
	Prefix string // of every key; default "tenantkit:"
	// Disabled (CACHE_ENABLED=false) makes every read miss and drops writes;
	// a call without a tenant is still an error.
	Disabled bool
	Metrics  tenancy.CacheMetrics
}

// Tenant is a cache whose keys are always prefixed with the id of the tenant
// bound to the context (tenancy.WithTenant): two tenants using the same key
// never see each other's value, and there is no global key to reach.
// Values are stored as JSON.
type Tenant struct {
	rdb      redis.UniversalClient
	prefix   string
	disabled bool
	metrics  tenancy.CacheMetrics
	sf       singleflight.Group
}

// New returns the cache.
func New(cfg Config) *Tenant {
	if cfg.Prefix == "" {
		cfg.Prefix = "tenantkit:"
	}
	m := cfg.Metrics
	if m == nil {
		m = nopMetrics{}
	}
	return &Tenant{rdb: cfg.Redis, prefix: cfg.Prefix, disabled: cfg.Disabled || cfg.Redis == nil, metrics: m}
}

// ErrNoTenant is returned by every call made without a tenant in the context.
var ErrNoTenant = errors.New("cache: no tenant bound to the context; tenant cache keys always carry the tenant")

// namespace is the key prefix of the context's tenant.
func (c *Tenant) namespace(ctx context.Context) (string, error) {
	t, ok := tenancy.FromContext(ctx)
	if !ok {
		return "", ErrNoTenant
	}
	return c.prefix + "app:" + t.ID.String() + ":", nil
}

func (c *Tenant) key(ctx context.Context, key string) (string, error) {
	ns, err := c.namespace(ctx)
	if err != nil {
		return "", err
	}
	if key == "" {
		return "", errors.New("cache: empty key")
	}
	return ns + key, nil
}

// Get decodes the tenant's value for key into dst and reports whether it was there.
func (c *Tenant) Get(ctx context.Context, key string, dst any) (bool, error) {
	k, err := c.key(ctx, key)
	if err != nil || c.disabled {
		return false, err
	}
	b, err := c.rdb.Get(ctx, k).Bytes()
	if errors.Is(err, redis.Nil) {
		c.metrics.Miss(tenancy.LevelRedis)
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("cache get %s: %w", key, err)
	}
	if err := json.Unmarshal(b, dst); err != nil {
		return false, fmt.Errorf("cache get %s: decode: %w", key, err)
	}
	c.metrics.Hit(tenancy.LevelRedis)
	return true, nil
}

// Set stores v (as JSON) under the tenant's key for ttl, which must be positive.
func (c *Tenant) Set(ctx context.Context, key string, v any, ttl time.Duration) error {
	k, err := c.key(ctx, key)
	if err != nil {
		return err
	}
	if ttl <= 0 {
		return fmt.Errorf("cache set %s: ttl must be positive, got %s", key, ttl)
	}
	if c.disabled {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("cache set %s: encode: %w", key, err)
	}
	if err := c.rdb.Set(ctx, k, b, ttl).Err(); err != nil {
		return fmt.Errorf("cache set %s: %w", key, err)
	}
	return nil
}

// Delete removes the tenant's keys.
func (c *Tenant) Delete(ctx context.Context, keys ...string) error {
	full := make([]string, 0, len(keys))
	for _, key := range keys {
		k, err := c.key(ctx, key)
		if err != nil {
			return err
		}
		full = append(full, k)
	}
	if c.disabled || len(full) == 0 {
		return nil
	}
	if err := c.rdb.Unlink(ctx, full...).Err(); err != nil {
		return fmt.Errorf("cache delete: %w", err)
	}
	c.metrics.Invalidation(tenancy.LevelRedis)
	return nil
}

// Flush removes every key of the context's tenant, and only those.
func (c *Tenant) Flush(ctx context.Context) error {
	ns, err := c.namespace(ctx)
	if err != nil || c.disabled {
		return err
	}
	iter := c.rdb.Scan(ctx, 0, globEscape(ns)+"*", 500).Iterator()
	batch := make([]string, 0, 500)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := c.rdb.Unlink(ctx, batch...).Err()
		batch = batch[:0]
		return err
	}
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == cap(batch) {
			if err := flush(); err != nil {
				return fmt.Errorf("cache flush: %w", err)
			}
		}
	}
	if err := iter.Err(); err != nil {
		return fmt.Errorf("cache flush: %w", err)
	}
	if err := flush(); err != nil {
		return fmt.Errorf("cache flush: %w", err)
	}
	c.metrics.Invalidation(tenancy.LevelRedis)
	return nil
}

// GetOrCompute returns the tenant's cached value for key, or computes it once
// (concurrent callers in this process share one computation), stores it for
// ttl and returns it. If Redis fails, the value is computed and returned: the
// cache costs speed, never an answer.
func GetOrCompute[T any](ctx context.Context, c *Tenant, key string, ttl time.Duration, compute func(context.Context) (T, error)) (T, error) {
	var zero T
	k, err := c.key(ctx, key)
	if err != nil {
		return zero, err
	}
	if ttl <= 0 {
		return zero, fmt.Errorf("cache get-or-compute %s: ttl must be positive, got %s", key, ttl)
	}
	if c.disabled {
		return compute(ctx)
	}
	var v T
	found, gerr := c.Get(ctx, key, &v)
	if found {
		return v, nil
	}
	if gerr != nil {
		return compute(ctx)
	}
	// Each caller decodes its own copy: a shared T could be mutated by one of them.
	raw, err, _ := c.sf.Do(k, func() (any, error) {
		v, err := compute(ctx)
		if err != nil {
			return nil, err
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("cache get-or-compute %s: encode: %w", key, err)
		}
		_ = c.rdb.Set(ctx, k, b, ttl).Err() // a failed store only costs a recompute
		return b, nil
	})
	if err != nil {
		return zero, err
	}
	if err := json.Unmarshal(raw.([]byte), &v); err != nil {
		return zero, fmt.Errorf("cache get-or-compute %s: decode: %w", key, err)
	}
	return v, nil
}

func globEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`, `]`, `\]`).Replace(s)
}

type nopMetrics struct{}

func (nopMetrics) Hit(string)          {}
func (nopMetrics) Miss(string)         {}
func (nopMetrics) Invalidation(string) {}
