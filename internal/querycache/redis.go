package querycache

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
)

// opTimeout keeps a slow Redis from stalling queries: past it the query
// simply runs uncached.
const opTimeout = 250 * time.Millisecond

// RedisCacher is the Cacher over Redis. Generations never expire: if one
// did, a tenant could return to an old generation and read its entries.
type RedisCacher struct {
	Redis  redis.UniversalClient
	Prefix string // default "tenantkit:"
}

func (r RedisCacher) prefix() string {
	if r.Prefix == "" {
		return "tenantkit:"
	}
	return r.Prefix
}

func (r RedisCacher) genKey(tenant uuid.UUID) string {
	return r.prefix() + "query:gen:" + tenant.String()
}

// Get returns the entry under key.
func (r RedisCacher) Get(ctx context.Context, key string) ([]byte, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	b, err := r.Redis.Get(ctx, r.prefix()+"query:"+key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return b, true, nil
}

// Store puts val under key for ttl.
func (r RedisCacher) Store(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	return r.Redis.Set(ctx, r.prefix()+"query:"+key, val, ttl).Err()
}

// Generation returns the tenant's generation, 0 before its first write.
func (r RedisCacher) Generation(ctx context.Context, tenant uuid.UUID) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	n, err := r.Redis.Get(ctx, r.genKey(tenant)).Uint64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	return n, err
}

// Bump advances the tenant's generation.
func (r RedisCacher) Bump(ctx context.Context, tenant uuid.UUID) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opTimeout)
	defer cancel()
	return r.Redis.Incr(ctx, r.genKey(tenant)).Err()
}
