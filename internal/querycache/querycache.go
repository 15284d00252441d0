// Package querycache is a GORM plugin that caches the results of the queries
// that opt in, in the spirit of go-gorm/caches but safe for tenants: its keys
// carry the tenant (id and schema) and a per-tenant generation, so two
// tenants running byte-identical SQL (schema tenants do, their search_path
// differs) never share an entry, and any write for a tenant bumps its
// generation so its stale entries are never read again.
//
//	db.Use(querycache.New(querycache.Config{Cacher: querycache.RedisCacher{Redis: rdb}, TTL: time.Minute}))
//	err := db.WithContext(ctx).Scopes(querycache.Cached).Where("...").Find(&rows).Error
//
// Only SELECTs with a tenant bound to the context, outside transactions, are
// cached; every other query runs as usual. Writes through GORM (create,
// update, delete, Exec, non-SELECT Raw) bump the tenant's generation. Writes
// committed in an explicit transaction, or made outside GORM, call Invalidate
// after they commit.
package querycache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql/driver"
	"encoding/gob"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/callbacks"

	"github.com/your-org/tenantkit/internal/tenancy"
)

// Cacher stores entries and per-tenant generations (RedisCacher).
type Cacher interface {
	Get(ctx context.Context, key string) ([]byte, bool, error)
	Store(ctx context.Context, key string, val []byte, ttl time.Duration) error
	// Generation is the tenant's current generation (0 before any write).
	Generation(ctx context.Context, tenant uuid.UUID) (uint64, error)
	// Bump advances the generation, orphaning every entry built on the old one.
	Bump(ctx context.Context, tenant uuid.UUID) error
}

// Config configures New.
type Config struct {
	Cacher  Cacher
	TTL     time.Duration // default for Cached; CACHE_TTL
	Log     *slog.Logger
	Metrics tenancy.CacheMetrics
}

// Plugin is the GORM plugin; register it with db.Use.
type Plugin struct {
	cfg   Config
	query func(*gorm.DB) // GORM's own query callback, run on a miss

	mu       sync.Mutex
	pending  map[uuid.UUID]bool // generations whose bump failed: retried, and not cached meanwhile
	retrying bool
}

// New returns the plugin.
func New(cfg Config) *Plugin {
	if cfg.TTL <= 0 {
		cfg.TTL = 2 * time.Minute
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Metrics == nil {
		cfg.Metrics = nopMetrics{}
	}
	return &Plugin{cfg: cfg}
}

// Name implements gorm.Plugin.
func (p *Plugin) Name() string { return "tenantkit:querycache" }

// Initialize implements gorm.Plugin: it wraps GORM's query callback and
// registers the generation bumps after every kind of write.
func (p *Plugin) Initialize(db *gorm.DB) error {
	cb := db.Callback()
	p.query = cb.Query().Get("gorm:query")
	if p.query == nil {
		return fmt.Errorf("querycache: gorm:query callback not found")
	}
	for _, err := range []error{
		cb.Query().Replace("gorm:query", p.queryCallback),
		cb.Create().After("gorm:create").Register("querycache:bump", p.bumpAfterWrite),
		cb.Update().After("gorm:update").Register("querycache:bump", p.bumpAfterWrite),
		cb.Delete().After("gorm:delete").Register("querycache:bump", p.bumpAfterWrite),
		cb.Raw().After("gorm:raw").Register("querycache:bump", p.bumpAfterWrite),
		cb.Row().After("gorm:row").Register("querycache:bump", p.bumpAfterWriteRow),
	} {
		if err != nil {
			return fmt.Errorf("querycache: register callbacks: %w", err)
		}
	}
	return nil
}

const settingKey = "tenantkit:querycache"

// Cached is a GORM scope opting one query in, for the configured TTL.
func Cached(db *gorm.DB) *gorm.DB { return db.Set(settingKey, time.Duration(0)) }

// CachedFor is a scope opting one query in for ttl.
func CachedFor(ttl time.Duration) func(*gorm.DB) *gorm.DB {
	return func(db *gorm.DB) *gorm.DB { return db.Set(settingKey, ttl) }
}

// Invalidate bumps the generation of the context's tenant: for writes GORM
// did not see, or that were committed in a transaction.
func (p *Plugin) Invalidate(ctx context.Context) error {
	t, err := tenancy.MustFromContext(ctx)
	if err != nil {
		return err
	}
	return p.bump(ctx, t)
}

// Key is the cache key of a statement for tenant t at generation gen. The
// digest alone (SQL, arguments, destination type) is what go-gorm/caches
// keys on; it is the same for two schema tenants running the same query.
func Key(t *tenancy.Tenant, gen uint64, digest string) string {
	return "q:" + t.ID.String() + ":" + t.Schema() + ":" + fmt.Sprint(gen) + ":" + digest
}

func (p *Plugin) ttl(db *gorm.DB) (time.Duration, bool) {
	v, ok := db.Get(settingKey)
	if !ok {
		return 0, false
	}
	ttl, _ := v.(time.Duration)
	if ttl <= 0 {
		ttl = p.cfg.TTL
	}
	return ttl, true
}

func (p *Plugin) queryCallback(db *gorm.DB) {
	ttl, on := p.ttl(db)
	t, bound := tenancy.FromContext(db.Statement.Context)
	if !on || !bound || db.Error != nil || db.DryRun || inTransaction(db) || p.bumpPending(t.ID) {
		p.query(db)
		return
	}
	callbacks.BuildQuerySQL(db) // GORM's query reuses the built SQL
	if db.Error != nil {
		return
	}
	if !isSelect(db.Statement.SQL.String()) {
		p.query(db)
		p.bumpAfterWrite(db)
		return
	}
	ctx := db.Statement.Context
	gen, err := p.cfg.Cacher.Generation(ctx, t.ID)
	if err != nil {
		p.cfg.Log.Debug("query cache unavailable", "error", err)
		p.query(db)
		return
	}
	key := Key(t, gen, Digest(db.Statement))
	if b, ok, err := p.cfg.Cacher.Get(ctx, key); err == nil && ok {
		if err := decode(b, db); err == nil {
			p.cfg.Metrics.Hit(tenancy.LevelRedis)
			return
		}
	}
	p.cfg.Metrics.Miss(tenancy.LevelRedis)
	p.query(db)
	if db.Error != nil {
		return
	}
	b, err := encode(db)
	if err != nil {
		p.cfg.Log.Debug("query result not cacheable", "error", err)
		return
	}
	if err := p.cfg.Cacher.Store(ctx, key, b, ttl); err != nil {
		p.cfg.Log.Debug("query cache store failed", "error", err)
	}
}

func (p *Plugin) bumpAfterWrite(db *gorm.DB) {
	if db.DryRun {
		return
	}
	t, ok := tenancy.FromContext(db.Statement.Context)
	if !ok {
		return // no tenant bound: no tenant's rows were reachable
	}
	if err := p.bump(db.Statement.Context, t); err != nil {
		p.cfg.Log.Warn("query cache: bump generation failed", "tenant_id", t.ID, "error", err)
	}
}

func (p *Plugin) bumpAfterWriteRow(db *gorm.DB) {
	if !isSelect(db.Statement.SQL.String()) {
		p.bumpAfterWrite(db)
	}
}

func (p *Plugin) bump(ctx context.Context, t *tenancy.Tenant) error {
	if err := p.cfg.Cacher.Bump(ctx, t.ID); err != nil {
		p.retryBump(t.ID)
		return fmt.Errorf("bump query cache generation of %s: %w", t.ID, err)
	}
	p.cfg.Metrics.Invalidation(tenancy.LevelRedis)
	return nil
}

func (p *Plugin) bumpPending(id uuid.UUID) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pending[id]
}

// retryBump keeps bumping a generation whose bump failed until Redis takes
// it: entries of the old generation must not be read when Redis returns.
func (p *Plugin) retryBump(id uuid.UUID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pending == nil {
		p.pending = map[uuid.UUID]bool{}
	}
	p.pending[id] = true
	if !p.retrying {
		p.retrying = true
		go p.retryBumps()
	}
}

func (p *Plugin) retryBumps() {
	wait := 100 * time.Millisecond
	for {
		time.Sleep(wait)
		wait = min(2*wait, time.Second)
		p.mu.Lock()
		ids := make([]uuid.UUID, 0, len(p.pending))
		for id := range p.pending {
			ids = append(ids, id)
		}
		p.mu.Unlock()
		for _, id := range ids {
			if p.cfg.Cacher.Bump(context.Background(), id) == nil {
				p.mu.Lock()
				delete(p.pending, id)
				p.mu.Unlock()
				p.cfg.Metrics.Invalidation(tenancy.LevelRedis)
			}
		}
		p.mu.Lock()
		if len(p.pending) == 0 {
			p.retrying = false
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
	}
}

// inTransaction: a read in a transaction may see its own uncommitted writes,
// which must never reach a shared cache.
func inTransaction(db *gorm.DB) bool {
	_, ok := db.Statement.ConnPool.(gorm.TxCommitter)
	return ok
}

func isSelect(sql string) bool {
	s := strings.TrimLeft(sql, " \t\r\n(")
	return len(s) >= 6 && strings.EqualFold(s[:6], "select")
}

// Digest identifies a built statement: SQL, arguments (by value, never by
// address) and destination type.
func Digest(st *gorm.Statement) string {
	h := sha256.New()
	io.WriteString(h, st.SQL.String())
	for _, v := range st.Vars {
		h.Write([]byte{0})
		writeVar(h, v)
	}
	h.Write([]byte{0})
	io.WriteString(h, reflect.TypeOf(st.Dest).String())
	return hex.EncodeToString(h.Sum(nil))
}

func writeVar(w io.Writer, v any) {
	if vr, ok := v.(driver.Valuer); ok {
		if rv := reflect.ValueOf(v); rv.Kind() != reflect.Pointer || !rv.IsNil() {
			if dv, err := vr.Value(); err == nil {
				v = dv
			}
		}
	}
	rv := reflect.ValueOf(v)
	for rv.IsValid() && rv.Kind() == reflect.Pointer && !rv.IsNil() {
		rv = rv.Elem()
	}
	if !rv.IsValid() {
		io.WriteString(w, "nil")
		return
	}
	fmt.Fprintf(w, "%T=%#v", rv.Interface(), rv.Interface())
}

// encode stores the rows scanned into Dest with gob, which (unlike JSON)
// ignores json:"-" tags, so fields hidden from the API survive the cache.
func encode(db *gorm.DB) ([]byte, error) {
	var buf bytes.Buffer
	enc := gob.NewEncoder(&buf)
	if err := enc.Encode(db.RowsAffected); err != nil {
		return nil, err
	}
	if err := enc.EncodeValue(reflect.ValueOf(db.Statement.Dest)); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func decode(b []byte, db *gorm.DB) error {
	dec := gob.NewDecoder(bytes.NewReader(b))
	var n int64
	if err := dec.Decode(&n); err != nil {
		return err
	}
	dest := reflect.ValueOf(db.Statement.Dest)
	if dest.Kind() != reflect.Pointer || dest.IsNil() {
		return fmt.Errorf("querycache: destination %T is not a pointer", db.Statement.Dest)
	}
	dest.Elem().SetZero() // gob leaves fields absent from the entry (zero values) untouched
	if err := dec.DecodeValue(dest); err != nil {
		return err
	}
	db.RowsAffected = n
	if db.Statement.Result != nil {
		db.Statement.Result.RowsAffected = n
	}
	return nil
}

type nopMetrics struct{}

func (nopMetrics) Hit(string)          {}
func (nopMetrics) Miss(string)         {}
func (nopMetrics) Invalidation(string) {}
