package cachestore_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/your-org/tenantkit/internal/apperr"
	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/tenancy/cachestore"
	"github.com/your-org/tenantkit/internal/testenv"
	"github.com/your-org/tenantkit/internal/testenv/redisproc"
)

// countingStore counts the lookups that reach Postgres.
type countingStore struct {
	*tenancy.PGStore
	lookups atomic.Int64
	delay   time.Duration // holds a lookup open so concurrent callers overlap
}

func (s *countingStore) hit() {
	s.lookups.Add(1)
	time.Sleep(s.delay)
}

func (s *countingStore) TenantByID(ctx context.Context, id uuid.UUID) (*tenancy.Tenant, error) {
	s.hit()
	return s.PGStore.TenantByID(ctx, id)
}

func (s *countingStore) TenantByIdentifier(ctx context.Context, identifier string) (*tenancy.Tenant, error) {
	s.hit()
	return s.PGStore.TenantByIdentifier(ctx, identifier)
}

func (s *countingStore) TenantByAPIKey(ctx context.Context, key string) (*tenancy.Tenant, error) {
	s.hit()
	return s.PGStore.TenantByAPIKey(ctx, key)
}

// commandCounter counts the key commands a client sends (not pub/sub).
type commandCounter struct{ n atomic.Int64 }

func (c *commandCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *commandCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmd)
	}
}
func (c *commandCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.n.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

type levelCounts struct {
	mu sync.Mutex
	m  map[string]int
}

func (l *levelCounts) add(k string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[string]int{}
	}
	l.m[k]++
}
func (l *levelCounts) get(k string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.m[k]
}
func (l *levelCounts) Hit(level string)          { l.add("hit:" + level) }
func (l *levelCounts) Miss(level string)         { l.add("miss:" + level) }
func (l *levelCounts) Invalidation(level string) { l.add("invalidation:" + level) }

type cacheEnv struct {
	db     *testenv.DB
	url    string
	prefix string
}

func newCacheEnv(t *testing.T) cacheEnv {
	t.Helper()
	url, prefix := testenv.Redis(t)
	return cacheEnv{db: testenv.Postgres(t), url: url, prefix: prefix + ":"}
}

func redisClient(t testing.TB, url string) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	return c
}

// process is one api or worker process's view: its own store, cache and
// subscription over the shared database and Redis.
type process struct {
	store   *countingStore
	cache   *cachestore.Store
	rdb     *redis.Client
	metrics *levelCounts
}

func (e cacheEnv) process(t *testing.T) *process {
	t.Helper()
	p := &process{store: &countingStore{PGStore: &tenancy.PGStore{DB: e.db.App}}, rdb: redisClient(t, e.url), metrics: &levelCounts{}}
	p.cache = cachestore.New(cachestore.Config{Store: p.store, Redis: p.rdb, Prefix: e.prefix, TTL: time.Minute, Metrics: p.metrics})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.cache.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, 5*time.Second, "subscription", func() bool { return p.cache.Live() })
	return p
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func status(c *cachestore.Store, id uuid.UUID) tenancy.Status {
	t, err := c.TenantByID(context.Background(), id)
	if err != nil {
		return tenancy.Status(apperr.CodeOf(err))
	}
	return t.Status
}

func TestCachedStore_ColdKeyCausesOneLookup(t *testing.T) {
	t.Parallel()
	e := newCacheEnv(t)
	tn := e.db.Tenant(t, "cold-co", tenancy.TierStandard)
	p := e.process(t)
	p.store.delay = 100 * time.Millisecond
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			var got *tenancy.Tenant
			var err error
			if i%2 == 0 {
				got, err = p.cache.TenantByID(ctx, tn.ID)
			} else {
				got, err = p.cache.TenantByIdentifier(ctx, tn.Identifier)
			}
			if err != nil || got.ID != tn.ID {
				t.Errorf("lookup: %v %v", got, err)
			}
		})
	}
	wg.Wait()
	// One lookup by id and one by identifier at most; never one per caller.
	if n := p.store.lookups.Load(); n < 1 || n > 2 {
		t.Fatalf("%d concurrent cold lookups reached Postgres %d times, want 1 per key", 32, n)
	}
}

func TestCachedStore_WarmLookupMakesNoRoundTrip(t *testing.T) {
	t.Parallel()
	e := newCacheEnv(t)
	tn := e.db.Tenant(t, "warm-co", tenancy.TierPremium)
	p := e.process(t)
	ctx := context.Background()
	key := createKey(t, p.cache, tn.ID)
	lookups := func() {
		for _, f := range []func() (*tenancy.Tenant, error){
			func() (*tenancy.Tenant, error) { return p.cache.TenantByID(ctx, tn.ID) },
			func() (*tenancy.Tenant, error) { return p.cache.TenantByIdentifier(ctx, tn.Identifier) },
			func() (*tenancy.Tenant, error) { return p.cache.TenantByAPIKey(ctx, key) },
		} {
			if got, err := f(); err != nil || got.ID != tn.ID || got.Schema() != tn.Schema() {
				t.Fatalf("lookup: %+v %v", got, err)
			}
		}
	}
	lookups() // warm
	cc := &commandCounter{}
	p.rdb.AddHook(cc)
	before, hits := p.store.lookups.Load(), p.metrics.get("hit:memory")
	for range 100 {
		lookups()
	}
	if n := p.store.lookups.Load() - before; n != 0 {
		t.Fatalf("warm lookups reached Postgres %d times", n)
	}
	if n := cc.n.Load(); n != 0 {
		t.Fatalf("warm lookups sent %d Redis commands", n)
	}
	if h := p.metrics.get("hit:memory") - hits; h < 300 {
		t.Fatalf("memory hits counted %d, want >= 300", h)
	}

	// Another process, cold in memory, is answered by Redis.
	q := e.process(t)
	if got, err := q.cache.TenantByAPIKey(ctx, key); err != nil || got.ID != tn.ID {
		t.Fatalf("second process: %v %v", got, err)
	}
	if n := q.store.lookups.Load(); n != 0 || q.metrics.get("hit:redis") == 0 {
		t.Fatalf("second process went to Postgres %d times, redis hits %d", n, q.metrics.get("hit:redis"))
	}
}

func createKey(t *testing.T, c *cachestore.Store, tenantID uuid.UUID) string {
	t.Helper()
	_, key, err := c.CreateAPIKey(context.Background(), tenantID, "ci")
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func TestCachedStore_UnknownIsNegativelyCachedUntilCreated(t *testing.T) {
	t.Parallel()
	e := newCacheEnv(t)
	a, b := e.process(t), e.process(t)
	ctx := context.Background()
	id := uuid.New()
	unknownKey := "tk_abcdefgh_" + strings.Repeat("x", 43)
	for _, p := range []*process{a, b} {
		for range 5 {
			if _, err := p.cache.TenantByIdentifier(ctx, "ghost-co"); apperr.CodeOf(err) != apperr.NotFound {
				t.Fatalf("unknown identifier: %v", err)
			}
			if _, err := p.cache.TenantByID(ctx, id); apperr.CodeOf(err) != apperr.NotFound {
				t.Fatalf("unknown id: %v", err)
			}
			if _, err := p.cache.TenantByAPIKey(ctx, unknownKey); apperr.CodeOf(err) != apperr.NotFound {
				t.Fatalf("unknown key: %v", err)
			}
		}
	}
	if n := a.store.lookups.Load(); n != 3 {
		t.Fatalf("process a: 15 unknown lookups reached Postgres %d times, want 3", n)
	}
	if n := b.store.lookups.Load(); n != 0 {
		t.Fatalf("process b: unknown lookups reached Postgres %d times, want 0 (Redis knows)", n)
	}
	tn := &tenancy.Tenant{ID: id, Identifier: "ghost-co", Name: "Ghost", Tier: tenancy.TierStandard,
		Isolation: tenancy.IsolationRLS, Status: tenancy.StatusActive}
	if err := a.cache.Create(ctx, tn); err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string]*process{"writer": a, "other": b} {
		waitFor(t, 2*time.Second, name+" sees the created tenant", func() bool {
			byID, err1 := p.cache.TenantByID(ctx, id)
			byName, err2 := p.cache.TenantByIdentifier(ctx, "ghost-co")
			return err1 == nil && err2 == nil && byID.ID == id && byName.ID == id
		})
	}
}

func TestCachedStore_SuspensionReachesOtherProcess(t *testing.T) {
	t.Parallel()
	e := newCacheEnv(t)
	tn := e.db.Tenant(t, "susp-co", tenancy.TierStandard)
	a, b := e.process(t), e.process(t)
	ctx := context.Background()
	for _, p := range []*process{a, b} {
		if s := status(p.cache, tn.ID); s != tenancy.StatusActive {
			t.Fatalf("warm: %s", s)
		}
		if _, err := p.cache.TenantByIdentifier(ctx, tn.Identifier); err != nil {
			t.Fatal(err)
		}
	}
	suspended := tenancy.StatusSuspended
	if _, err := a.cache.Update(ctx, tn.ID, tenancy.TenantUpdate{Status: &suspended}); err != nil {
		t.Fatal(err)
	}
	if s := status(a.cache, tn.ID); s != tenancy.StatusSuspended {
		t.Fatalf("writer still sees %s", s)
	}
	waitFor(t, 2*time.Second, "other process sees the suspension", func() bool {
		byName, err := b.cache.TenantByIdentifier(ctx, tn.Identifier)
		return status(b.cache, tn.ID) == tenancy.StatusSuspended && err == nil && byName.Status == tenancy.StatusSuspended
	})
	if b.metrics.get("invalidation:memory") == 0 {
		t.Fatal("no memory invalidation counted")
	}

	// Deleting leaves nothing behind, in either process.
	if err := a.cache.Delete(ctx, tn.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "other process forgets the deleted tenant", func() bool {
		_, err := b.cache.TenantByIdentifier(ctx, tn.Identifier)
		return apperr.CodeOf(err) == apperr.NotFound && status(b.cache, tn.ID) == tenancy.Status(apperr.NotFound)
	})
}

func TestCachedStore_APIKeyRevocationReachesOtherProcess(t *testing.T) {
	t.Parallel()
	e := newCacheEnv(t)
	tn := e.db.Tenant(t, "keys-co", tenancy.TierPremium)
	a, b := e.process(t), e.process(t)
	ctx := context.Background()
	k, key, err := a.cache.CreateAPIKey(ctx, tn.ID, "ci")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []*process{a, b} {
		if got, err := p.cache.TenantByAPIKey(ctx, key); err != nil || got.ID != tn.ID {
			t.Fatalf("warm: %v %v", got, err)
		}
	}
	// Entries are keyed by the key's hash: the key itself is nowhere in Redis.
	rdb := redisClient(t, e.url)
	keys, err := rdb.Keys(ctx, e.prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, rk := range keys {
		v, _ := rdb.Get(ctx, rk).Result()
		if strings.Contains(rk, key) || strings.Contains(v, key) || strings.Contains(rk, strings.TrimPrefix(key, k.Prefix+"_")) {
			t.Fatalf("Redis entry %q holds the API key", rk)
		}
	}
	if err := a.cache.RevokeAPIKey(ctx, tn.ID, k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.cache.TenantByAPIKey(ctx, key); apperr.CodeOf(err) != apperr.NotFound {
		t.Fatalf("writer still accepts the revoked key: %v", err)
	}
	waitFor(t, 2*time.Second, "other process refuses the revoked key", func() bool {
		_, err := b.cache.TenantByAPIKey(ctx, key)
		return apperr.CodeOf(err) == apperr.NotFound
	})
}

func TestCachedStore_RedisDownFallsBackToPostgresAndResubscribes(t *testing.T) {
	t.Parallel()
	srv := redisproc.Start(t)
	e := cacheEnv{db: testenv.Postgres(t), url: srv.URL(), prefix: "tenantkit:"}
	warm := e.db.Tenant(t, "down-warm", tenancy.TierStandard)
	cold := e.db.Tenant(t, "down-cold", tenancy.TierPremium)
	a, b := e.process(t), e.process(t)
	ctx := context.Background()
	if s := status(b.cache, warm.ID); s != tenancy.StatusActive {
		t.Fatal(s)
	}

	srv.Stop()
	waitFor(t, 5*time.Second, "subscriptions notice Redis is gone", func() bool { return !a.cache.Live() && !b.cache.Live() })
	for range 3 {
		for _, tn := range []*tenancy.Tenant{warm, cold} {
			got, err := b.cache.TenantByIdentifier(ctx, tn.Identifier)
			if err != nil || got.ID != tn.ID {
				t.Fatalf("with Redis down, %s: %v %v", tn.Identifier, got, err)
			}
		}
	}
	// Writes still succeed, and the other process stops trusting its memory
	// within its degraded TTL, so a suspension is enforced even now.
	suspended, active := tenancy.StatusSuspended, tenancy.StatusActive
	if _, err := a.cache.Update(ctx, warm.ID, tenancy.TenantUpdate{Status: &suspended}); err != nil {
		t.Fatalf("update with Redis down: %v", err)
	}
	waitFor(t, 2*time.Second, "suspension enforced with Redis down", func() bool {
		return status(b.cache, warm.ID) == tenancy.StatusSuspended
	})

	srv.Restart()
	waitFor(t, 5*time.Second, "resubscribed after Redis came back", func() bool { return a.cache.Live() && b.cache.Live() })
	if _, err := a.cache.Update(ctx, warm.ID, tenancy.TenantUpdate{Status: &active}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "invalidation flows again", func() bool { return status(b.cache, warm.ID) == tenancy.StatusActive })
	// Now live, b trusts its memory for the full TTL: only a published
	// invalidation can make it see the next change.
	before := b.store.lookups.Load()
	for range 10 {
		status(b.cache, warm.ID)
	}
	if b.store.lookups.Load() != before {
		t.Fatal("live process did not serve from memory")
	}
	if _, err := a.cache.Update(ctx, warm.ID, tenancy.TenantUpdate{Status: &suspended}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "suspension reaches the other process through pub/sub", func() bool {
		return status(b.cache, warm.ID) == tenancy.StatusSuspended
	})
}

func TestCachedStore_SilentRedisIsDetectedAndSurvived(t *testing.T) {
	t.Parallel()
	srv := redisproc.Start(t)
	e := cacheEnv{db: testenv.Postgres(t), url: srv.URL(), prefix: "tenantkit:"}
	tn := e.db.Tenant(t, "silent-co", tenancy.TierStandard)
	a, b := e.process(t), e.process(t)
	ctx := context.Background()
	if s := status(b.cache, tn.ID); s != tenancy.StatusActive {
		t.Fatal(s)
	}

	srv.Pause() // connections stay open, nothing answers: a partition, not a crash
	waitFor(t, 5*time.Second, "silent subscriptions are noticed", func() bool { return !a.cache.Live() && !b.cache.Live() })
	suspended := tenancy.StatusSuspended
	if _, err := a.cache.Update(ctx, tn.ID, tenancy.TenantUpdate{Status: &suspended}); err != nil {
		t.Fatalf("update with Redis silent: %v", err)
	}
	waitFor(t, 2*time.Second, "suspension enforced with Redis silent", func() bool {
		return status(b.cache, tn.ID) == tenancy.StatusSuspended
	})

	srv.Resume()
	waitFor(t, 10*time.Second, "resubscribed after Redis answers again", func() bool { return a.cache.Live() && b.cache.Live() })
	active := tenancy.StatusActive
	if _, err := a.cache.Update(ctx, tn.ID, tenancy.TenantUpdate{Status: &active}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "invalidation flows again", func() bool { return status(b.cache, tn.ID) == tenancy.StatusActive })
}
