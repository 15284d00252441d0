// Package cachestore caches the tenant registry: an in-process LRU in front of
// Redis in front of Postgres, kept coherent across processes by invalidations
// published on Redis. It is the Redis side of tenant resolution; the
// resolvers and the registry itself live in package tenancy.
package cachestore

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/golang-lru/v2/expirable"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"

	"github.com/your-org/tenantkit/internal/apperr"
	"github.com/your-org/tenantkit/internal/page"
	"github.com/your-org/tenantkit/internal/tenancy"
)

// Source is the registry Store decorates (tenancy.PGStore).
type Source interface {
	tenancy.Lookup
	Create(ctx context.Context, t *tenancy.Tenant) error
	Update(ctx context.Context, id uuid.UUID, u tenancy.TenantUpdate) (*tenancy.Tenant, error)
	DeleteWithKeys(ctx context.Context, id uuid.UUID) ([][]byte, error)
	List(ctx context.Context, f tenancy.Filter, limit int, after *page.Cursor) ([]*tenancy.Tenant, *string, error)
	CreateAPIKey(ctx context.Context, tenantID uuid.UUID, name string) (*tenancy.APIKey, string, error)
	RevokeAPIKeyHash(ctx context.Context, tenantID, keyID uuid.UUID) ([]byte, error)
}

type noMetrics struct{}

func (noMetrics) Hit(string)          {}
func (noMetrics) Miss(string)         {}
func (noMetrics) Invalidation(string) {}

// Config configures New; zero values get the defaults.
type Config struct {
	Store Source
	// Redis is the shared level and carries invalidations between processes.
	// Without it only the in-process level exists, trusted for DegradedTTL.
	Redis       redis.UniversalClient
	Prefix      string        // of Redis keys and the channel; default "tenantkit:"
	TTL         time.Duration // CACHE_TTL, both levels; default 2m
	NegativeTTL time.Duration // unknown ids, identifiers and keys; default 5s
	// DegradedTTL bounds how long an in-process entry is used while
	// invalidations cannot be received (Redis down): default 1s.
	DegradedTTL time.Duration
	Size        int // in-process entries per kind of result; default 10,000
	Log         *slog.Logger
	Metrics     tenancy.CacheMetrics
}

const (
	redisOpTimeout = 250 * time.Millisecond // a slow Redis must not stall resolution
	redisPause     = time.Second            // skip Redis this long after it failed
	fillTimeout    = 3 * time.Second        // a shared fill outlives the request that started it
)

// Store decorates the tenant registry with an in-process LRU in front of
// Redis in front of Postgres. Writes go through to the store, overwrite the
// Redis entries and publish an invalidation that every process applies (Run).
// It implements tenancy.Lookup, tenancy.Registry and what the admin API needs.
type Store struct {
	store   Source
	rdb     redis.UniversalClient
	prefix  string
	ttl     time.Duration
	negTTL  time.Duration
	degTTL  time.Duration
	log     *slog.Logger
	metrics tenancy.CacheMetrics

	pos *expirable.LRU[localKey, localEntry] // found tenants and key/identifier → id
	neg *expirable.LRU[localKey, time.Time]  // not found, kept apart so garbage cannot evict tenants
	sf  singleflight.Group

	mu    sync.Mutex // orders local fills against invalidations
	epoch uint64     // bumped by every invalidation; a fill that saw another epoch is dropped

	live       atomic.Bool  // subscribed: in-process entries are trusted for the full TTL
	redisPause atomic.Int64 // unix nanos before which Redis is not asked

	pendingMu sync.Mutex
	pending   []invalidation // published once Redis answers again
}

type keyKind byte

const (
	kindID keyKind = iota + 1
	kindIdentifier
	kindAPIKey
)

// localKey is comparable without allocating on the hot path.
type localKey struct {
	kind keyKind
	id   uuid.UUID
	name string
	hash [32]byte
}

type localEntry struct {
	tenant *tenancy.Tenant // kindID
	id     uuid.UUID       // kindIdentifier, kindAPIKey
	at     time.Time       // fill time, checked while invalidations are not received
}

// New returns the decorator; call Run to receive invalidations.
func New(cfg Config) *Store {
	if cfg.Prefix == "" {
		cfg.Prefix = "tenantkit:"
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 2 * time.Minute
	}
	if cfg.NegativeTTL <= 0 {
		cfg.NegativeTTL = 5 * time.Second
	}
	if cfg.DegradedTTL <= 0 {
		cfg.DegradedTTL = time.Second
	}
	if cfg.Size <= 0 {
		cfg.Size = 10_000
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Metrics == nil {
		cfg.Metrics = noMetrics{}
	}
	return &Store{
		store: cfg.Store, rdb: cfg.Redis, prefix: cfg.Prefix, ttl: cfg.TTL, negTTL: cfg.NegativeTTL,
		degTTL: cfg.DegradedTTL, log: cfg.Log, metrics: cfg.Metrics,
		pos: expirable.NewLRU[localKey, localEntry](cfg.Size, nil, cfg.TTL),
		neg: expirable.NewLRU[localKey, time.Time](cfg.Size, nil, cfg.NegativeTTL),
	}
}

// Live reports whether invalidations from other processes are being received.
func (c *Store) Live() bool { return c.live.Load() }

// TenantByID returns the tenant or a not_found error.
func (c *Store) TenantByID(ctx context.Context, id uuid.UUID) (*tenancy.Tenant, error) {
	return c.lookup(ctx, localKey{kind: kindID, id: id}, func(ctx context.Context) (*tenancy.Tenant, error) {
		return c.store.TenantByID(ctx, id)
	})
}

// TenantByIdentifier returns the tenant or a not_found error.
func (c *Store) TenantByIdentifier(ctx context.Context, identifier string) (*tenancy.Tenant, error) {
	if !tenancy.ValidIdentifier(identifier) {
		return nil, notFound(kindIdentifier)
	}
	return c.lookup(ctx, localKey{kind: kindIdentifier, name: identifier}, func(ctx context.Context) (*tenancy.Tenant, error) {
		return c.store.TenantByIdentifier(ctx, identifier)
	})
}

// TenantByAPIKey returns the tenant of an unrevoked key. Entries are keyed by
// the key's hash: the key itself is never stored.
func (c *Store) TenantByAPIKey(ctx context.Context, key string) (*tenancy.Tenant, error) {
	if !tenancy.PlausibleAPIKey(key) {
		return nil, notFound(kindAPIKey)
	}
	k := localKey{kind: kindAPIKey, hash: [32]byte(tenancy.HashAPIKey(key))}
	return c.lookup(ctx, k, func(ctx context.Context) (*tenancy.Tenant, error) {
		return c.store.TenantByAPIKey(ctx, key)
	})
}

// List is not cached: the admin API pages through the live registry.
func (c *Store) List(ctx context.Context, f tenancy.Filter, limit int, after *page.Cursor) ([]*tenancy.Tenant, *string, error) {
	return c.store.List(ctx, f, limit, after)
}

func notFound(k keyKind) error {
	if k == kindAPIKey {
		return apperr.New(apperr.NotFound, "api key not found")
	}
	return apperr.New(apperr.NotFound, "tenant not found")
}

// fresh reports whether an entry filled at may be used: always while
// invalidations arrive, briefly otherwise, so losing Redis costs speed only.
func (c *Store) fresh(at time.Time) bool {
	return c.live.Load() || time.Since(at) < c.degTTL
}

// lookup serves k from memory, else fills it once (single-flight) from Redis
// or the store. Identifier and key entries hold only the tenant id, so a
// change of the tenant invalidates one entry.
func (c *Store) lookup(ctx context.Context, k localKey, fromStore func(context.Context) (*tenancy.Tenant, error)) (*tenancy.Tenant, error) {
	if e, ok := c.pos.Get(k); ok && c.fresh(e.at) {
		c.metrics.Hit(tenancy.LevelMemory)
		if k.kind == kindID {
			return clone(e.tenant), nil
		}
		return c.TenantByID(ctx, e.id)
	}
	if at, ok := c.neg.Get(k); ok && c.fresh(at) {
		c.metrics.Hit(tenancy.LevelMemory)
		return nil, notFound(k.kind)
	}
	c.metrics.Miss(tenancy.LevelMemory)
	v, err, _ := c.sf.Do(c.redisKey(k), func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fillTimeout)
		defer cancel()
		return c.fill(fctx, k, fromStore)
	})
	if err != nil {
		return nil, err
	}
	r := v.(fillResult)
	switch {
	case r.tenant != nil:
		return clone(r.tenant), nil
	case r.id != uuid.Nil:
		return c.TenantByID(ctx, r.id)
	default:
		return nil, notFound(k.kind)
	}
}

// fillResult is a tenant (kindID or a store answer), an id to look up
// (a Redis mapping entry), or neither: not found.
type fillResult struct {
	tenant *tenancy.Tenant
	id     uuid.UUID
}

func (c *Store) fill(ctx context.Context, k localKey, fromStore func(context.Context) (*tenancy.Tenant, error)) (fillResult, error) {
	epoch := c.currentEpoch()
	if r, ok := c.redisGet(ctx, k); ok {
		c.metrics.Hit(tenancy.LevelRedis)
		c.remember(epoch, k, r)
		return r, nil
	}
	c.metrics.Miss(tenancy.LevelRedis)
	t, err := fromStore(ctx)
	if apperr.CodeOf(err) == apperr.NotFound {
		c.redisSetNX(ctx, k, fillResult{})
		c.remember(epoch, k, fillResult{})
		return fillResult{}, nil
	}
	if err != nil {
		return fillResult{}, err
	}
	idKey := localKey{kind: kindID, id: t.ID}
	c.redisSetNX(ctx, idKey, fillResult{tenant: t})
	c.remember(epoch, idKey, fillResult{tenant: t})
	if k.kind != kindID {
		c.redisSetNX(ctx, k, fillResult{id: t.ID})
		c.remember(epoch, k, fillResult{id: t.ID})
	}
	return fillResult{tenant: t}, nil
}

func (c *Store) currentEpoch() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.epoch
}

// remember stores r in memory unless an invalidation happened since the fill
// began: what the fill read may be older than that invalidation.
func (c *Store) remember(epoch uint64, k localKey, r fillResult) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch != epoch {
		return
	}
	switch {
	case r.tenant != nil:
		c.pos.Add(k, localEntry{tenant: r.tenant, at: now})
		c.neg.Remove(k)
	case r.id != uuid.Nil:
		c.pos.Add(k, localEntry{id: r.id, at: now})
		c.neg.Remove(k)
	default:
		c.neg.Add(k, now)
		c.pos.Remove(k)
	}
}

// clone keeps callers from sharing (and mutating) the cached tenant.
func clone(t *tenancy.Tenant) *tenancy.Tenant {
	c := *t
	return &c
}
