package tenancy

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// DefaultCell is the cell of the control plane (the tenant registry) and of
// every tenant placed before there were cells: DATABASE_URL's cluster.
const DefaultCell = "default"

// IsolationDatabase places a tenant in a database of its own on its cell.
const IsolationDatabase Isolation = "database"

// Cell is one Postgres cluster tenants may be placed on (TENANCY_CELLS,
// MIGRATE_TENANCY_CELLS).
type Cell struct {
	Name     string
	AppDSN   string // app role: api and worker
	OwnerDSN string // owner role: migrate and provisioning
}

var cellNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,30}$`)

// ValidCellName reports whether s may name a cell: it is stored in the
// registry and used in metric and readiness names, never in SQL text.
func ValidCellName(s string) bool { return cellNameRE.MatchString(s) }

// CellOf returns the tenant's cell; tenants cached before cells existed
// carry none and live on the default cell.
func (t *Tenant) CellOf() string {
	if t.Cell == "" {
		return DefaultCell
	}
	return t.Cell
}

// ErrCellUnavailable is returned for a tenant whose cell is not configured
// in this process, or whose pool cannot be opened within the connection
// budget: its requests get 503 unavailable (IsUnavailable), never another
// cell's data.
var ErrCellUnavailable = errors.New("tenant's cell is unavailable")

// DatabaseName is the database of a database-isolated tenant on a cell whose
// DSNs name database base: <base>_tenant_<identifier with - as _>. Callers
// must have validated the identifier; the result is always used quoted.
func DatabaseName(base, identifier string) string {
	return base + "_" + SchemaName(identifier)
}

// TemplateDatabaseName is the migrated template database tenant databases of
// a cell are cloned from (CREATE DATABASE ... TEMPLATE).
func TemplateDatabaseName(base string) string { return base + "_tenant_template" }

// WithDatabase returns dsn naming database db instead of its own.
func WithDatabase(dsn, db string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		return "", fmt.Errorf("cell dsn is not a URL") // never echo a DSN: it may hold a password
	}
	u.Path = "/" + db
	u.RawPath = ""
	return u.String(), nil
}

// DatabaseOf returns the database name of a URL DSN.
func DatabaseOf(dsn string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		return "", fmt.Errorf("cell dsn is not a URL")
	}
	name := strings.TrimPrefix(u.Path, "/")
	if name == "" {
		return "", fmt.Errorf("cell dsn names no database")
	}
	return name, nil
}

// CellCounter counts tenants per cell for the placement policy.
type CellCounter interface {
	CountByCell(ctx context.Context, iso Isolation) (map[string]int, error)
}

// PlaceCell picks the cell of a new tenant of isolation iso: the requested
// one, else the configured cell with the fewest tenants of that isolation
// (ties go to the earlier cell in TENANCY_CELLS order).
func PlaceCell(ctx context.Context, cells []string, counter CellCounter, requested string, iso Isolation) (string, error) {
	if requested != "" {
		for _, c := range cells {
			if c == requested {
				return c, nil
			}
		}
		return "", fmt.Errorf("place: cell %q is not configured", requested)
	}
	if len(cells) <= 1 || counter == nil {
		return DefaultCell, nil
	}
	counts, err := counter.CountByCell(ctx, iso)
	if err != nil {
		return "", fmt.Errorf("place: %w", err)
	}
	best := cells[0]
	for _, c := range cells[1:] {
		if counts[c] < counts[best] {
			best = c
		}
	}
	return best, nil
}

// Budget bounds the connections one process opens across every pool: each
// cell's pool (PoolConfig) plus at most MaxDatabases tenant-database pools of
// DatabasePool connections each (docs/scaling.md, "Connection budgets").
type Budget struct {
	MaxConnections int           // TENANCY_MAX_CONNECTIONS
	DatabasePool   int           // TENANCY_DATABASE_POOL_SIZE: connections per tenant database
	DatabaseIdle   time.Duration // TENANCY_DATABASE_POOL_IDLE: an unused tenant-database pool is closed after it
	MaxDatabases   int           // derived: tenant-database pools open at once (LRU)
}
