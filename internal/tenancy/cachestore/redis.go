package cachestore

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/your-org/tenantkit/internal/tenancy"
)

// Redis values: a tenant as JSON under tenant:id:<id>, a tenant id under
// tenant:identifier:<identifier> and tenant:apikey:<sha256 hex>, and
// notFoundValue for a negative entry or a tombstone left by a write.
const notFoundValue = "!"

func (c *Store) redisKey(k localKey) string {
	switch k.kind {
	case kindID:
		return c.prefix + "tenant:id:" + k.id.String()
	case kindIdentifier:
		return c.prefix + "tenant:identifier:" + k.name
	default:
		return c.prefix + "tenant:apikey:" + hex.EncodeToString(k.hash[:])
	}
}

func (c *Store) channel() string { return c.prefix + "tenant:invalidate" }

// redisUsable is false without Redis and for a short pause after it failed,
// so that an outage costs one timeout, not one per request.
func (c *Store) redisUsable() bool {
	return c.rdb != nil && time.Now().UnixNano() >= c.redisPause.Load()
}

func (c *Store) redisFailed(op string, err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	now := time.Now().UnixNano()
	if c.redisPause.Swap(now+int64(redisPause)) < now {
		c.log.Warn("tenant cache: Redis unavailable, using Postgres", "op", op, "error", err)
	}
}

func (c *Store) redisGet(ctx context.Context, k localKey) (fillResult, bool) {
	if !c.redisUsable() {
		return fillResult{}, false
	}
	ctx, cancel := context.WithTimeout(ctx, redisOpTimeout)
	defer cancel()
	v, err := c.rdb.Get(ctx, c.redisKey(k)).Result()
	if errors.Is(err, redis.Nil) {
		return fillResult{}, false
	}
	if err != nil {
		c.redisFailed("get", err)
		return fillResult{}, false
	}
	return c.decode(k, v)
}

func (c *Store) decode(k localKey, v string) (fillResult, bool) {
	if v == notFoundValue {
		return fillResult{}, true
	}
	if k.kind == kindID {
		var t tenancy.Tenant
		if err := json.Unmarshal([]byte(v), &t); err != nil || t.ID != k.id {
			return fillResult{}, false // foreign or old format: treat as a miss
		}
		return fillResult{tenant: &t}, true
	}
	id, err := uuid.Parse(v)
	if err != nil {
		return fillResult{}, false
	}
	return fillResult{id: id}, true
}

// encode returns the Redis value of r and its TTL.
func (c *Store) encode(r fillResult) (string, time.Duration) {
	switch {
	case r.tenant != nil:
		b, _ := json.Marshal(r.tenant) // a tenancy.Tenant always marshals
		return string(b), c.ttl
	case r.id != uuid.Nil:
		return r.id.String(), c.ttl
	default:
		return notFoundValue, c.negTTL
	}
}

// redisSetNX stores what a fill read, unless the key exists: a write's
// entry (set unconditionally) must win over a fill that read before it.
func (c *Store) redisSetNX(ctx context.Context, k localKey, r fillResult) {
	if !c.redisUsable() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, redisOpTimeout)
	defer cancel()
	v, ttl := c.encode(r)
	if err := c.rdb.SetNX(ctx, c.redisKey(k), v, ttl).Err(); err != nil {
		c.redisFailed("set", err)
	}
}
