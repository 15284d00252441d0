// Package testenv gives integration tests real Postgres and Redis: each test
// gets a fresh database cloned from a migrated template and connects as the
// real non-superuser app role. Services come from TEST_DATABASE_URL /
// TEST_REDIS_URL, else the local defaults, else containers started with
// dockertest when a Docker daemon answers; otherwise the test fails (never skips).
package testenv

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	"github.com/redis/go-redis/v9"

	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/testenv/pgbouncer"
	"github.com/your-org/tenantkit/migrations"
)

// AppRole is the non-superuser role tests connect as; it is cluster-wide.
const AppRole = "tenantkit_app"

const (
	defaultPostgres = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	defaultRedis    = "redis://127.0.0.1:6379/0"
	howToProvide    = "integration tests need PostgreSQL and Redis: run them locally (see README), " +
		"set TEST_DATABASE_URL (a role that may create databases and roles) and TEST_REDIS_URL, or start a Docker daemon"
)

// DB is one test's fresh database.
type DB struct {
	Name     string
	OwnerURL string  // the migrating owner role
	AppURL   string  // the app role (NOSUPERUSER, NOBYPASSRLS, owns nothing)
	Owner    *sql.DB // owner pool (plain pgx)
	App      *sql.DB // app pool through tenancy.OpenDB: binds tenants like production
	// cells are the other cells tenants may be placed on (AddCell).
	cells     map[string]*DB
	cellNames []string
	// Pooler is the PgBouncer AppURL and App go through when the suite runs
	// with TEST_VIA_PGBOUNCER=1 (make test-pgbouncer); nil otherwise.
	// DirectAppURL reaches Postgres itself, for tests about one session.
	Pooler       *pgbouncer.Server
	DirectAppURL string
}

// AddCell makes other (a database on another cluster: Cluster.Postgres) the
// cell name of this database's control plane, for Lifecycle, Pools and the
// stacks built over d.
func (d *DB) AddCell(name string, other *DB) {
	if d.cells == nil {
		d.cells = map[string]*DB{}
	}
	d.cells[name] = other
	d.cellNames = append(d.cellNames, name)
}

// Cells returns the cell configuration: d as default, then the added cells.
func (d *DB) Cells() []tenancy.Cell {
	out := []tenancy.Cell{{Name: tenancy.DefaultCell, AppDSN: d.AppURL, OwnerDSN: d.OwnerURL}}
	for _, n := range d.cellNames {
		out = append(out, tenancy.Cell{Name: n, AppDSN: d.cells[n].AppURL, OwnerDSN: d.cells[n].OwnerURL})
	}
	return out
}

// TestBudget is the connection budget of test pools: room for 8 tenant databases.
var TestBudget = tenancy.Budget{MaxConnections: 64, DatabasePool: 2, MaxDatabases: 8}

// Pools opens the app role's pools over d's cells, as cmd/api does, closed
// when the test ends; the default cell's is d.App.
func (d *DB) Pools(t testing.TB) *tenancy.Pools {
	t.Helper()
	p, err := tenancy.OpenPools(tenancy.PoolsConfig{Cells: d.Cells(), Pool: tenancy.PoolConfig{MaxIdle: 8, MaxOverflow: 8},
		Budget: TestBudget, Default: d.App})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// Migrator returns a migrator for this database, as migrate and provisioning use.
func (d *DB) Migrator() *tenancy.Migrator {
	return &tenancy.Migrator{OwnerDSN: d.OwnerURL, AppRole: AppRole, Control: migrations.Control(), Tenant: migrations.Tenant()}
}

var (
	serverOnce sync.Once
	serverURL  string
	serverErr  error
	tmplMu     sync.Mutex
	templates  = map[string]bool{}
)

// Postgres returns a fresh database migrated with the embedded migrations.
func Postgres(t testing.TB) *DB {
	return PostgresWith(t, migrations.Control(), migrations.Tenant())
}

// PostgresWith returns a fresh database migrated with the given sets (tests
// of broken or extra migrations pass their own).
func PostgresWith(t testing.TB, control, tenant fs.FS) *DB {
	t.Helper()
	base := server(t)
	if citusMode() {
		return citusPostgres(t, base, control, tenant)
	}
	return postgresOn(t, base, control, tenant)
}

// Postgres returns a fresh migrated database on this cluster.
func (c *Cluster) Postgres(t testing.TB) *DB {
	t.Helper()
	return postgresOn(t, c.URL, migrations.Control(), migrations.Tenant())
}

func postgresOn(t testing.TB, base string, control, tenant fs.FS) *DB {
	t.Helper()
	ctx := context.Background()
	tmpl, err := template(ctx, base, control, tenant)
	if err != nil {
		t.Fatalf("prepare template database: %v", err)
	}
	name := "tk_test_" + randomHex(6)
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.ExecContext(ctx, `CREATE DATABASE `+name+` TEMPLATE `+tmpl); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	d := &DB{Name: name, OwnerURL: withDatabase(base, name, ""), AppURL: withDatabase(base, name, AppRole)}
	d.DirectAppURL = d.AppURL
	if os.Getenv("TEST_VIA_PGBOUNCER") != "" {
		d.viaPgBouncer(t, base)
	}
	if d.Owner, err = sql.Open("pgx", d.OwnerURL); err != nil {
		t.Fatal(err)
	}
	// Database privileges are not cloned from the template: grant as `migrate up` does.
	if err := tenancy.RevokeTemp(ctx, d.Owner, AppRole); err != nil {
		t.Fatalf("prepare test database: %v", err)
	}
	if d.App, err = tenancy.OpenDB(d.AppURL, tenancy.PoolConfig{MaxIdle: 8, MaxOverflow: 8}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.App.Close()
		d.Owner.Close()
		if os.Getenv("TESTENV_KEEP") != "" {
			t.Logf("kept database %s", name)
			return
		}
		admin, err := sql.Open("pgx", base)
		if err != nil {
			return
		}
		defer admin.Close()
		_, _ = admin.Exec(`DROP DATABASE IF EXISTS ` + name + ` WITH (FORCE)`)
		dropTenantDatabases(admin, name)
	})
	return d
}

// server finds a Postgres server once per test binary.
func server(t testing.TB) string {
	serverOnce.Do(func() {
		candidates := []string{os.Getenv("TEST_DATABASE_URL")}
		if candidates[0] == "" {
			candidates = []string{defaultPostgres}
		}
		for _, u := range candidates {
			if serverErr = ping(u); serverErr == nil {
				serverURL = u
				break
			}
		}
		if serverURL == "" && os.Getenv("TEST_DATABASE_URL") == "" {
			if u, err := dockerPostgres(); err == nil {
				serverURL, serverErr = u, nil
			}
		}
		if serverURL != "" {
			serverErr = ensureRole(serverURL)
		}
	})
	if serverErr != nil {
		t.Fatalf("%s: %v", howToProvide, serverErr)
	}
	return serverURL
}

func ping(u string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		return err
	}
	return conn.Close(ctx)
}

// ensureRole creates the app role once for the whole cluster.
func ensureRole(base string) error {
	db, err := sql.Open("pgx", base)
	if err != nil {
		return err
	}
	defer db.Close()
	return withLock(db, func(conn *sql.Conn) error {
		_, err := conn.ExecContext(context.Background(), `DO $$ BEGIN
			IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '`+AppRole+`') THEN
				CREATE ROLE `+AppRole+` LOGIN NOSUPERUSER NOBYPASSRLS;
			END IF; END $$`)
		return err
	})
}

// template returns a template database migrated with the given sets,
// creating it once per content hash; concurrent test binaries share it.
func template(ctx context.Context, base string, control, tenant fs.FS) (string, error) {
	h := sha256.New()
	for _, f := range []fs.FS{control, tenant} {
		_ = fs.WalkDir(f, ".", func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				b, _ := fs.ReadFile(f, p)
				fmt.Fprintf(h, "%s\x00%s\x00", p, b)
			}
			return nil
		})
		h.Write([]byte{1})
	}
	name := "tk_tmpl_" + hex.EncodeToString(h.Sum(nil))[:12]
	tmplMu.Lock()
	defer tmplMu.Unlock()
	if templates[base+" "+name] {
		return name, nil
	}
	db, err := sql.Open("pgx", base)
	if err != nil {
		return "", err
	}
	defer db.Close()
	err = withLock(db, func(conn *sql.Conn) error {
		var ready bool
		if err := conn.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1 AND datistemplate)`, name).Scan(&ready); err != nil {
			return err
		}
		if ready {
			return nil
		}
		if _, err := conn.ExecContext(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
			return err
		}
		if _, err := conn.ExecContext(ctx, `CREATE DATABASE `+name); err != nil {
			return err
		}
		m := &tenancy.Migrator{OwnerDSN: withDatabase(base, name, ""), AppRole: AppRole, Control: control, Tenant: tenant}
		if _, err := m.UpControl(ctx); err != nil {
			return err
		}
		if _, err := m.UpSchema(ctx, "public"); err != nil {
			return err
		}
		_, err := conn.ExecContext(ctx, `ALTER DATABASE `+name+` IS_TEMPLATE true`)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("template %s: %w", name, err)
	}
	templates[base+" "+name] = true
	return name, nil
}

// withLock serialises setup across concurrently running test binaries.
func withLock(db *sql.DB, f func(*sql.Conn) error) error {
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(7250001)`); err != nil {
		return err
	}
	defer conn.ExecContext(ctx, `SELECT pg_advisory_unlock(7250001)`)
	return f(conn)
}

func withDatabase(base, name, user string) string {
	u, err := url.Parse(base)
	if err != nil {
		panic(err)
	}
	u.Path = "/" + name
	if user != "" {
		u.User = url.User(user)
	}
	return u.String()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

var (
	redisOnce sync.Once
	redisURL  string
	redisErr  error
)

// Redis returns the URL of a reachable Redis and a key prefix unique to the
// test; tests namespace their keys and queues with it.
func Redis(t testing.TB) (url, prefix string) {
	t.Helper()
	redisOnce.Do(func() {
		redisURL = os.Getenv("TEST_REDIS_URL")
		if redisURL == "" {
			redisURL = defaultRedis
		}
		if redisErr = pingRedis(redisURL); redisErr != nil && os.Getenv("TEST_REDIS_URL") == "" {
			if u, err := dockerRedis(); err == nil {
				redisURL, redisErr = u, nil
			}
		}
	})
	if redisErr != nil {
		t.Fatalf("%s: %v", howToProvide, redisErr)
	}
	return redisURL, "test" + randomHex(4)
}

func pingRedis(u string) error {
	opt, err := redis.ParseURL(u)
	if err != nil {
		return err
	}
	c := redis.NewClient(opt)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return c.Ping(ctx).Err()
}

// Lifecycle returns the tenant lifecycle over d, with hybrid placement.
func (d *DB) Lifecycle() *tenancy.Lifecycle {
	store := &tenancy.PGStore{DB: d.App}
	l := &tenancy.Lifecycle{
		Registry:    store,
		Provisioner: &tenancy.Provisioner{Migrator: d.Migrator(), Owner: d.Owner},
		Placement:   tenancy.Placement{Strategy: tenancy.Hybrid},
		Counter:     store,
	}
	for _, c := range d.Cells() {
		l.Cells = append(l.Cells, c.Name)
		if c.Name == tenancy.DefaultCell {
			continue
		}
		other := d.cells[c.Name]
		if l.Provisioner.Cells == nil {
			l.Provisioner.Cells = map[string]*tenancy.Provisioner{}
		}
		l.Provisioner.Cells[c.Name] = &tenancy.Provisioner{Migrator: other.Migrator(), Owner: other.Owner, Cell: c.Name}
	}
	return l
}

// Place creates an active tenant with the given placement.
func (d *DB) Place(t testing.TB, identifier string, iso tenancy.Isolation, cell string) *tenancy.Tenant {
	t.Helper()
	tier := tenancy.TierStandard
	if iso != tenancy.IsolationRLS {
		tier = tenancy.TierPremium
	}
	tn, err := d.Lifecycle().Create(context.Background(), tenancy.NewTenant{Identifier: identifier, Name: identifier,
		Tier: tier, Isolation: iso, Cell: cell})
	if err != nil {
		t.Fatalf("create tenant %s (%s on %s): %v", identifier, iso, cell, err)
	}
	return tn
}

// Tenant creates an active, provisioned tenant (premium: own schema).
func (d *DB) Tenant(t testing.TB, identifier string, tier tenancy.Tier) *tenancy.Tenant {
	t.Helper()
	tn, err := d.Lifecycle().Create(context.Background(), tenancy.NewTenant{Identifier: identifier, Name: identifier, Tier: tier})
	if err != nil {
		t.Fatalf("create tenant %s: %v", identifier, err)
	}
	return tn
}

func parseUUID(s string) (uuid.UUID, error) { return uuid.Parse(s) }

// dropTenantDatabases drops the databases of database tenants and the cell
// template that tests created beside database name (tenancy.DatabaseName).
func dropTenantDatabases(admin *sql.DB, name string) {
	rows, err := admin.Query(`SELECT datname FROM pg_database WHERE datname LIKE $1`, name+`\_%`)
	if err != nil {
		return
	}
	var names []string
	for rows.Next() {
		var n string
		if rows.Scan(&n) == nil {
			names = append(names, n)
		}
	}
	rows.Close()
	for _, n := range names {
		q := tenancy.QuoteIdent(n)
		_, _ = admin.Exec(`ALTER DATABASE ` + q + ` IS_TEMPLATE false`)
		_, _ = admin.Exec(`DROP DATABASE IF EXISTS ` + q + ` WITH (FORCE)`)
	}
}
