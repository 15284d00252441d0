package querycache_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"gorm.io/gorm"

	"github.com/your-org/tenantkit/internal/models"
	"github.com/your-org/tenantkit/internal/querycache"
	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/testenv"
)

// recorder is a Cacher that remembers the keys stored through it.
type recorder struct {
	querycache.Cacher
	mu     sync.Mutex
	stored []string
	gets   int
}

func (r *recorder) Store(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	r.mu.Lock()
	r.stored = append(r.stored, key)
	r.mu.Unlock()
	return r.Cacher.Store(ctx, key, val, ttl)
}

func (r *recorder) Get(ctx context.Context, key string) ([]byte, bool, error) {
	r.mu.Lock()
	r.gets++
	r.mu.Unlock()
	return r.Cacher.Get(ctx, key)
}

func (r *recorder) keys() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.stored...)
}

// tenantless keys entries on the statement digest alone, as go-gorm/caches
// does: the hazard the tenant-carrying key exists to prevent.
type tenantless struct{ querycache.Cacher }

func digestOnly(key string) string { return key[strings.LastIndex(key, ":")+1:] }

func (c tenantless) Get(ctx context.Context, key string) ([]byte, bool, error) {
	return c.Cacher.Get(ctx, digestOnly(key))
}
func (c tenantless) Store(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	return c.Cacher.Store(ctx, digestOnly(key), val, ttl)
}
func (c tenantless) Generation(context.Context, uuid.UUID) (uint64, error) { return 0, nil }

func redisCacher(t testing.TB) querycache.RedisCacher {
	t.Helper()
	url, prefix := testenv.Redis(t)
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	return querycache.RedisCacher{Redis: rdb, Prefix: prefix + ":"}
}

func openGORM(t testing.TB, d *testenv.DB, c querycache.Cacher) *gorm.DB {
	t.Helper()
	g, err := tenancy.OpenGORM(d.App, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Use(querycache.New(querycache.Config{Cacher: c, TTL: time.Minute})); err != nil {
		t.Fatal(err)
	}
	return g
}

type nameRow struct{ Name string }

// sameSQL is byte-identical for every tenant: schema tenants differ only by
// the search_path the driver binds.
const sameSQL = `SELECT name FROM projects ORDER BY name`

func cachedNames(t *testing.T, g *gorm.DB, tn *tenancy.Tenant) []string {
	t.Helper()
	var rows []nameRow
	if err := g.WithContext(tenancy.WithTenant(context.Background(), tn)).Scopes(querycache.Cached).Raw(sameSQL).Find(&rows).Error; err != nil {
		t.Fatalf("query as %s: %v", tn.Identifier, err)
	}
	names := make([]string, len(rows))
	for i, r := range rows {
		names[i] = r.Name
	}
	return names
}

// insertBehindCache adds a row without GORM, so no generation is bumped: a
// query that still misses it was answered by the cache.
func insertBehindCache(t *testing.T, d *testenv.DB, tn *tenancy.Tenant, name string) {
	t.Helper()
	if _, err := d.App.ExecContext(tenancy.WithTenant(context.Background(), tn),
		`INSERT INTO projects (id, tenant_id, name) VALUES (gen_random_uuid(), $1, $2)`, tn.ID, name); err != nil {
		t.Fatalf("insert as %s: %v", tn.Identifier, err)
	}
}

func createProject(t *testing.T, g *gorm.DB, tn *tenancy.Tenant, name string) *models.Project {
	t.Helper()
	p := &models.Project{Name: name}
	if err := (models.Projects{DB: g}).Create(tenancy.WithTenant(context.Background(), tn), p); err != nil {
		t.Fatalf("create project as %s: %v", tn.Identifier, err)
	}
	return p
}

func equal(a, b []string) bool {
	return strings.Join(a, "\x00") == strings.Join(b, "\x00") && len(a) == len(b)
}

func TestQueryCache_SchemaTenantsRunningIdenticalSQLNeverShareRows(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	a := d.Tenant(t, "qc-alpha", tenancy.TierPremium)
	b := d.Tenant(t, "qc-beta", tenancy.TierPremium)
	insertBehindCache(t, d, a, "alpha plan")
	insertBehindCache(t, d, b, "beta plan")
	rc := &recorder{Cacher: redisCacher(t)}
	g := openGORM(t, d, rc)

	for round := range 2 { // the second round is served from the cache
		if got := cachedNames(t, g, a); !equal(got, []string{"alpha plan"}) {
			t.Fatalf("round %d: alpha got %v", round, got)
		}
		if got := cachedNames(t, g, b); !equal(got, []string{"beta plan"}) {
			t.Fatalf("round %d: beta got %v, want only its own rows", round, got)
		}
	}
	insertBehindCache(t, d, a, "alpha hidden")
	if got := cachedNames(t, g, a); !equal(got, []string{"alpha plan"}) {
		t.Fatalf("alpha's query was not served from the cache: %v", got)
	}
	keys := rc.keys()
	if len(keys) != 2 {
		t.Fatalf("stored %d entries, want one per tenant: %v", len(keys), keys)
	}
	if digestOnly(keys[0]) != digestOnly(keys[1]) {
		t.Fatalf("statement digests differ (%v): the test does not run identical SQL", keys)
	}
	if keys[0] == keys[1] || !strings.Contains(keys[0], a.ID.String()) || !strings.Contains(keys[1], b.ID.String()) ||
		!strings.Contains(keys[0], a.Schema()) || !strings.Contains(keys[1], b.Schema()) {
		t.Fatalf("keys do not carry tenant id and schema: %v", keys)
	}

	t.Run("a key without the tenant would collide", func(t *testing.T) {
		c := &recorder{Cacher: tenantless{redisCacher(t)}}
		naive := openGORM(t, d, c)
		_ = cachedNames(t, naive, a)
		if got := cachedNames(t, naive, b); !equal(got, []string{"alpha hidden", "alpha plan"}) {
			t.Fatalf("with a digest-only key beta got %v; expected alpha's rows (the leak the tenant key prevents)", got)
		}
	})
}

func TestQueryCache_WriteInvalidatesThatTenantOnly(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	a := d.Tenant(t, "qw-alpha", tenancy.TierPremium)
	b := d.Tenant(t, "qw-beta", tenancy.TierPremium)
	s := d.Tenant(t, "qw-std", tenancy.TierStandard)
	g := openGORM(t, d, redisCacher(t))
	ctxA := tenancy.WithTenant(context.Background(), a)
	p := createProject(t, g, a, "a1")
	createProject(t, g, b, "b1")
	createProject(t, g, s, "s1")
	for _, tn := range []*tenancy.Tenant{a, b, s} {
		cachedNames(t, g, tn) // warm
	}
	// Rows only the database knows about: still hidden while the entry lives.
	insertBehindCache(t, d, b, "b-hidden")
	insertBehindCache(t, d, s, "s-hidden")

	steps := []struct {
		name  string
		write func() error
		want  []string
	}{
		{"gorm create", func() error { createProject(t, g, a, "a2"); return nil }, []string{"a1", "a2"}},
		{"gorm update", func() error {
			_, err := (models.Projects{DB: g}).Update(ctxA, p.ID, models.ProjectPatch{Name: ptr("a0")})
			return err
		}, []string{"a0", "a2"}},
		{"gorm delete", func() error { return (models.Projects{DB: g}).Delete(ctxA, p.ID) }, []string{"a2"}},
		{"raw exec", func() error {
			return g.WithContext(ctxA).Exec(`UPDATE projects SET name = 'a3' WHERE name = 'a2'`).Error
		}, []string{"a3"}},
	}
	for _, st := range steps {
		if err := st.write(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got := cachedNames(t, g, a); !equal(got, st.want) {
			t.Fatalf("after %s alpha got %v, want %v (stale entry served)", st.name, got, st.want)
		}
		if got := cachedNames(t, g, b); !equal(got, []string{"b1"}) {
			t.Fatalf("after alpha's %s beta got %v: its entry was invalidated or replaced", st.name, got)
		}
		if got := cachedNames(t, g, s); !equal(got, []string{"s1"}) {
			t.Fatalf("after alpha's %s the standard tenant got %v: its entry was invalidated or replaced", st.name, got)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestQueryCache_CachesOnlyOptedInQueriesOfABoundTenant(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	a := d.Tenant(t, "qo-alpha", tenancy.TierStandard)
	rc := &recorder{Cacher: redisCacher(t)}
	g := openGORM(t, d, rc)
	ctx := tenancy.WithTenant(context.Background(), a)
	var ps []models.Project
	if err := g.WithContext(ctx).Find(&ps).Error; err != nil {
		t.Fatal(err)
	}
	var n int
	if err := g.WithContext(context.Background()).Scopes(querycache.Cached).Raw(`SELECT 1`).Find(&n).Error; err != nil {
		t.Fatal(err)
	}
	if err := g.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		return tx.Scopes(querycache.Cached).Find(&ps).Error
	}); err != nil {
		t.Fatal(err)
	}
	if k := rc.keys(); len(k) != 0 || rc.gets != 0 {
		t.Fatalf("cache used by a query that did not opt in, had no tenant or ran in a transaction: %d gets, keys %v", rc.gets, k)
	}
}

func TestQueryCache_CachedRowsKeepFieldsHiddenFromJSON(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	a := d.Tenant(t, "qh-alpha", tenancy.TierStandard)
	g := openGORM(t, d, redisCacher(t))
	createProject(t, g, a, "a1")
	ctx := tenancy.WithTenant(context.Background(), a)
	for round := range 2 {
		var ps []models.Project
		if err := g.WithContext(ctx).Scopes(querycache.Cached).Find(&ps).Error; err != nil {
			t.Fatal(err)
		}
		if len(ps) != 1 || ps[0].TenantID != a.ID || ps[0].Name != "a1" || ps[0].CreatedAt.IsZero() {
			t.Fatalf("round %d: got %+v", round, ps)
		}
		var n int64
		if err := g.WithContext(ctx).Model(&models.Project{}).Scopes(querycache.Cached).Count(&n).Error; err != nil || n != 1 {
			t.Fatalf("round %d: count %d, %v", round, n, err)
		}
		var empty []models.Project
		if err := g.WithContext(ctx).Scopes(querycache.Cached).Where("name = ?", "none").Find(&empty).Error; err != nil || len(empty) != 0 {
			t.Fatalf("round %d: empty result %v, %v", round, empty, err)
		}
	}
}

func TestQueryCache_RedisDownQueriesStillAnswer(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	a := d.Tenant(t, "qd-alpha", tenancy.TierPremium)
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	t.Cleanup(func() { dead.Close() })
	g := openGORM(t, d, querycache.RedisCacher{Redis: dead})
	createProject(t, g, a, "a1") // its bump fails and is retried in the background
	if got := cachedNames(t, g, a); !equal(got, []string{"a1"}) {
		t.Fatalf("got %v with Redis down", got)
	}
}
