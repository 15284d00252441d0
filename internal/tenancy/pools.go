package tenancy

import (
	"container/list"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Pools sends each statement to the pool of its tenant's placement: the
// pool of the tenant's cell, or of the tenant's own database, opened lazily.
// Every pool is an OpenDB pool, so the binding (one round trip per
// statement) is the same on every cell. It is a gorm.ConnPool: OpenGORM over
// it, and handlers and tasks route without knowing. With one cell and no
// database tenants it adds one context lookup per statement, which binding
// repeats anyway.
type Pools struct {
	def   *sql.DB
	cells map[string]*cellPools // every cell, default too
	// multi is false for a single cell: every statement goes to def.
	multi  bool
	mu     sync.Mutex
	lru    *list.List // of *dbPool, most recently used first
	dbs    map[string]*list.Element
	max    int
	budget Budget
	fails  map[string]*sql.DB // see failing
	// borrowed is the caller's default pool, left open by Close.
	borrowed *sql.DB
}

type cellPools struct {
	name   string
	appDSN string
	db     *sql.DB
	base   string // database name of the cell's DSN
}

type dbPool struct {
	key  string
	db   *sql.DB
	used time.Time
}

// PoolsConfig configures OpenPools.
type PoolsConfig struct {
	Cells  []Cell     // Cells[0] is the default cell
	Pool   PoolConfig // each cell's pool
	Budget Budget     // tenant-database pools
	// Default, when set, is the default cell's pool, opened by the caller
	// with OpenDB; Close leaves it open.
	Default *sql.DB
}

// OpenPools opens a pool per cell sized by Pool, and serves database tenants
// from at most Budget.MaxDatabases tenant-database pools of
// Budget.DatabasePool connections each.
func OpenPools(cfg PoolsConfig) (*Pools, error) {
	cells, budget := cfg.Cells, cfg.Budget
	if len(cells) == 0 || cells[0].Name != DefaultCell {
		return nil, fmt.Errorf("open pools: the first cell must be %s", DefaultCell)
	}
	p := &Pools{cells: map[string]*cellPools{}, lru: list.New(), dbs: map[string]*list.Element{},
		max: max(1, budget.MaxDatabases), budget: budget}
	for _, c := range cells {
		var db *sql.DB
		var err error
		if c.Name == DefaultCell && cfg.Default != nil {
			db = cfg.Default
		} else {
			db, err = OpenDB(c.AppDSN, cfg.Pool)
		}
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("open pool of cell %s: %w", c.Name, err)
		}
		base, err := DatabaseOf(c.AppDSN)
		if err != nil {
			db.Close()
			p.Close()
			return nil, fmt.Errorf("open pool of cell %s: %w", c.Name, err)
		}
		p.cells[c.Name] = &cellPools{name: c.Name, appDSN: c.AppDSN, db: db, base: base}
	}
	p.def = p.cells[DefaultCell].db
	p.borrowed = cfg.Default
	// Database tenants may live on the default cell too: route whenever the
	// budget allows tenant databases at all.
	p.multi = len(cells) > 1 || budget.MaxDatabases > 0
	return p, nil
}

// Default is the default cell's pool: the control plane's.
func (p *Pools) Default() *sql.DB { return p.def }

// Cell returns the pool of a cell, nil when it is not configured.
func (p *Pools) Cell(name string) *sql.DB {
	if c := p.cells[name]; c != nil {
		return c.db
	}
	return nil
}

// Close closes every pool.
func (p *Pools) Close() error {
	var errs []error
	for _, c := range p.cells {
		if c.db != p.borrowed {
			errs = append(errs, c.db.Close())
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for e := p.lru.Front(); e != nil; e = e.Next() {
		errs = append(errs, e.Value.(*dbPool).db.Close())
	}
	p.lru.Init()
	clear(p.dbs)
	for _, db := range p.fails {
		errs = append(errs, db.Close())
	}
	clear(p.fails)
	return errors.Join(errs...)
}

// For returns the pool statements of ctx's tenant go to; without a tenant,
// the default cell's (the control plane's).
func (p *Pools) For(ctx context.Context) *sql.DB {
	if !p.multi {
		return p.def
	}
	t, ok := FromContext(ctx)
	if !ok {
		return p.def
	}
	if t.Isolation == IsolationDatabase {
		return p.database(t)
	}
	if t.Cell == DefaultCell || t.Cell == "" {
		return p.def
	}
	if c := p.cells[t.Cell]; c != nil {
		return c.db
	}
	return p.failing("cell "+t.Cell, fmt.Errorf("cell %q is not configured in this process: %w", t.Cell, ErrCellUnavailable))
}

// database returns the pool of a database tenant's own database, opening it
// when needed and closing the least recently used idle one past the budget.
func (p *Pools) database(t *Tenant) *sql.DB {
	c := p.cells[t.CellOf()]
	if c == nil || !ValidIdentifier(t.Identifier) {
		return p.failing("cell "+t.Cell, fmt.Errorf("cell %q is not configured in this process: %w", t.CellOf(), ErrCellUnavailable))
	}
	key := c.name + "/" + t.Identifier
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.databaseLocked(c, t, key, now)
}

func (p *Pools) databaseLocked(c *cellPools, t *Tenant, key string, now time.Time) *sql.DB {
	if e := p.dbs[key]; e != nil {
		dp := e.Value.(*dbPool)
		dp.used = now
		p.lru.MoveToFront(e)
		return dp.db
	}
	p.closeIdle(now)
	for p.lru.Len() >= p.max {
		if !p.evictOne() {
			return p.failingLocked("budget", fmt.Errorf("every one of the %d tenant-database pools the connection budget allows is busy: %w",
				p.max, ErrCellUnavailable))
		}
	}
	dsn, err := WithDatabase(c.appDSN, DatabaseName(c.base, t.Identifier))
	if err != nil {
		return p.failingLocked("dsn "+c.name, fmt.Errorf("%w: %w", err, ErrCellUnavailable))
	}
	db, err := OpenDB(dsn, PoolConfig{MaxIdle: p.budget.DatabasePool})
	if err != nil {
		return p.failingLocked("dsn "+c.name, fmt.Errorf("%w: %w", err, ErrCellUnavailable))
	}
	if p.budget.DatabaseIdle > 0 {
		db.SetConnMaxIdleTime(p.budget.DatabaseIdle)
	}
	p.dbs[key] = p.lru.PushFront(&dbPool{key: key, db: db, used: now})
	return db
}

// closeIdle closes tenant-database pools unused for DatabaseIdle.
func (p *Pools) closeIdle(now time.Time) {
	if p.budget.DatabaseIdle <= 0 {
		return
	}
	for e := p.lru.Back(); e != nil; {
		prev := e.Prev()
		dp := e.Value.(*dbPool)
		if now.Sub(dp.used) < p.budget.DatabaseIdle {
			break
		}
		if dp.db.Stats().InUse == 0 {
			p.remove(e)
		}
		e = prev
	}
}

// evictOne closes the least recently used pool with no connection in use.
func (p *Pools) evictOne() bool {
	for e := p.lru.Back(); e != nil; e = e.Prev() {
		if e.Value.(*dbPool).db.Stats().InUse == 0 {
			p.remove(e)
			return true
		}
	}
	return false
}

func (p *Pools) remove(e *list.Element) {
	dp := e.Value.(*dbPool)
	p.lru.Remove(e)
	delete(p.dbs, dp.key)
	go dp.db.Close() // waits for statements still reading; never under p.mu
}

// Forget closes the pool of a destroyed database tenant's database in this
// process (Lifecycle.Destroyed); other processes age theirs out.
func (p *Pools) Forget(t *Tenant) {
	if t.Isolation != IsolationDatabase {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if e := p.dbs[t.CellOf()+"/"+t.Identifier]; e != nil {
		p.remove(e)
	}
}

// OpenDatabases reports how many tenant-database pools are open.
func (p *Pools) OpenDatabases() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lru.Len()
}

// Ready returns a readiness check per cell, keyed postgres (the default
// cell, as before cells) and postgres_<cell>. Another cell's failure wraps
// ErrCellUnavailable: it takes its own tenants down, not the process.
func (p *Pools) Ready() map[string]func(context.Context) error {
	out := map[string]func(context.Context) error{}
	for name, c := range p.cells {
		if name == DefaultCell {
			out["postgres"] = c.db.PingContext
			continue
		}
		db, cell := c.db, name
		out["postgres_"+name] = func(ctx context.Context) error {
			if err := db.PingContext(ctx); err != nil {
				return fmt.Errorf("cell %s: %w: %w", cell, ErrCellUnavailable, err)
			}
			return nil
		}
	}
	return out
}

// The gorm.ConnPool methods route by the context's tenant.

func (p *Pools) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	return p.For(ctx).PrepareContext(ctx, query)
}

func (p *Pools) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return p.For(ctx).ExecContext(ctx, query, args...)
}

func (p *Pools) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return p.For(ctx).QueryContext(ctx, query, args...)
}

func (p *Pools) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return p.For(ctx).QueryRowContext(ctx, query, args...)
}

// BeginTx starts a transaction on the tenant's pool (gorm.TxBeginner).
func (p *Pools) BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error) {
	return p.For(ctx).BeginTx(ctx, opts)
}

// GetDBConn returns the default cell's pool (gorm.GetDBConnector).
func (p *Pools) GetDBConn() (*sql.DB, error) { return p.def, nil }

// failing returns a pool whose every statement fails with err: the answer
// for a tenant this process cannot reach, without a special case in callers
// (a *sql.Row cannot carry an error of ours otherwise). One per reason, kept
// until Close: reasons are few (cell names come from the registry).
func (p *Pools) failing(reason string, err error) *sql.DB {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.failingLocked(reason, err)
}

func (p *Pools) failingLocked(reason string, err error) *sql.DB {
	if db := p.fails[reason]; db != nil {
		return db
	}
	if p.fails == nil {
		p.fails = map[string]*sql.DB{}
	}
	db := sql.OpenDB(failConnector{err})
	p.fails[reason] = db
	return db
}

type failConnector struct{ err error }

func (c failConnector) Connect(context.Context) (driver.Conn, error) { return nil, c.err }
func (c failConnector) Driver() driver.Driver                        { return failDriver{c.err} }

type failDriver struct{ err error }

func (d failDriver) Open(string) (driver.Conn, error) { return nil, d.err }
