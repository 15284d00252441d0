package testenv

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strconv"
	"testing"

	"github.com/your-org/tenantkit/internal/tenancy"
)

// With TEST_CITUS set (make test-citus), TEST_DATABASE_URL names a Citus
// coordinator whose workers are registered in that database. A test
// database can then not be cloned from a template (its shards live on the
// workers): each is created on every node, with the citus extension, the
// workers registered and citus.enable_schema_based_sharding on, and
// migrated as `migrate up` does (control plane, public, SyncCitus). Premium
// tenants the test creates become distributed schemas at provisioning.
func citusMode() bool { return os.Getenv("TEST_CITUS") != "" }

// CitusMode reports whether the suite runs against a Citus cluster.
func CitusMode() bool { return citusMode() }

type citusNode struct {
	host string
	port int
}

func citusWorkers(ctx context.Context, base string) ([]citusNode, error) {
	db, err := sql.Open("pgx", base)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	var v string
	if err := db.QueryRowContext(ctx, `SELECT coalesce((SELECT extversion FROM pg_extension WHERE extname = 'citus'), '')`).Scan(&v); err != nil {
		return nil, err
	}
	if v == "" {
		return nil, fmt.Errorf("TEST_CITUS is set but %s has no citus extension: run the suite with `make test-citus`", redact(base))
	}
	rows, err := db.QueryContext(ctx, `SELECT nodename, nodeport FROM pg_dist_node WHERE groupid <> 0 AND noderole = 'primary' ORDER BY nodeid`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []citusNode
	for rows.Next() {
		var n citusNode
		if err := rows.Scan(&n.host, &n.port); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	if len(out) == 0 && rows.Err() == nil {
		return nil, fmt.Errorf("TEST_CITUS is set but %s has no worker registered (citus_add_node)", redact(base))
	}
	return out, rows.Err()
}

func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "TEST_DATABASE_URL"
	}
	return p.Redacted()
}

// citusPostgres is PostgresWith on a Citus cluster.
func citusPostgres(t testing.TB, base string, control, tenant fs.FS) *DB {
	t.Helper()
	ctx := context.Background()
	workers, err := citusWorkers(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	name := "tk_test_" + randomHex(6)
	nodes := []string{base}
	for _, w := range workers {
		u, _ := url.Parse(base)
		u.Host = w.host + ":" + strconv.Itoa(w.port)
		nodes = append(nodes, u.String())
	}
	t.Cleanup(func() {
		if os.Getenv("TESTENV_KEEP") != "" {
			return
		}
		for _, n := range nodes {
			if db, err := sql.Open("pgx", n); err == nil {
				_, _ = db.Exec(`DROP DATABASE IF EXISTS ` + name + ` WITH (FORCE)`)
				db.Close()
			}
		}
	})
	owner := withDatabase(base, name, "")
	// One at a time: registering workers syncs cluster-wide objects (roles)
	// to them, which concurrent registrations trip over.
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	d := &DB{Name: name, OwnerURL: owner, AppURL: withDatabase(base, name, AppRole)}
	if d.Owner, err = sql.Open("pgx", d.OwnerURL); err != nil {
		t.Fatal(err)
	}
	m := &tenancy.Migrator{OwnerDSN: owner, AppRole: AppRole, Control: control, Tenant: tenant}
	err = withLock(admin, func(*sql.Conn) error {
		if err := citusSetup(ctx, base, name, nodes, workers); err != nil {
			return err
		}
		if _, err := m.UpControl(ctx); err != nil {
			return fmt.Errorf("migrate control plane: %w", err)
		}
		if _, err := m.UpSchema(ctx, "public"); err != nil {
			return fmt.Errorf("migrate public: %w", err)
		}
		_, err := m.SyncCitus(ctx, d.Owner)
		return err
	})
	admin.Close()
	if err != nil {
		t.Fatalf("citus: %v", err)
	}
	if d.App, err = tenancy.OpenDB(d.AppURL, tenancy.PoolConfig{MaxIdle: 8, MaxOverflow: 8}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.App.Close(); d.Owner.Close() })
	return d
}

func citusSetup(ctx context.Context, base, name string, nodes []string, workers []citusNode) error {
	for _, n := range nodes {
		if err := execOn(ctx, n, `CREATE DATABASE `+name); err != nil {
			return fmt.Errorf("create database on %s: %w", redact(n), err)
		}
		if err := execOn(ctx, withDatabase(n, name, ""), `CREATE EXTENSION citus`); err != nil {
			return fmt.Errorf("create extension on %s: %w", redact(n), err)
		}
	}
	cu, _ := url.Parse(base)
	setup := fmt.Sprintf(`SELECT citus_set_coordinator_host(%s, %s)`, quote(cu.Hostname()), cu.Port())
	for _, w := range workers {
		setup += fmt.Sprintf(`; SELECT citus_add_node(%s, %d)`, quote(w.host), w.port)
	}
	// Sharding on before the first migrate up, as Citus documents it.
	setup += `; ALTER DATABASE ` + name + ` SET citus.enable_schema_based_sharding = on`
	if err := execOn(ctx, withDatabase(base, name, ""), setup); err != nil {
		return fmt.Errorf("register workers: %w", err)
	}
	return nil
}

func quote(s string) string { return "'" + s + "'" }

func execOn(ctx context.Context, dsn, stmt string) error {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, stmt)
	return err
}
