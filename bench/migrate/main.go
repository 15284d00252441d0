// Command bench-migrate measures migrations at scale in a throwaway
// database: the median time to provision one premium tenant, `migrate up`
// with nothing to do over N premium tenants, and one new migration applied
// to all of them. It prints figures next to docs/design.md's targets.
//
//	go run ./bench/migrate -n 1000   (or: make bench-migrate N=1000)
//	go run ./bench/migrate -cells -n 500 -databases 50   (two cells, two servers)
package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"syscall"
	"testing/fstest"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"

	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/migrations"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-migrate:", err)
		os.Exit(1)
	}
}

type options struct {
	n           int
	serverURL   string
	appRole     string
	concurrency int
	keep        bool
	cells       bool
	databases   int
}

func run(ctx context.Context, args []string, getenv func(string) string, out io.Writer) error {
	o := options{}
	fs := flag.NewFlagSet("bench-migrate", flag.ContinueOnError)
	fs.IntVar(&o.n, "n", 1000, "premium tenants to provision")
	fs.StringVar(&o.serverURL, "database-url", cmpOr(getenv("BENCH_DATABASE_URL"), "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"),
		"a role that may create databases (env BENCH_DATABASE_URL); a throwaway database is created and dropped")
	fs.StringVar(&o.appRole, "app-role", "tenantkit_app", "app role granted DML, as migrate up does")
	fs.IntVar(&o.concurrency, "concurrency", 8, "premium schemas migrated at once (migrate up's default with DB_POOL_SIZE >= 8)")
	fs.BoolVar(&o.keep, "keep", false, "keep the database afterwards")
	fs.BoolVar(&o.cells, "cells", false, "two cells on two servers (a throwaway second cluster): -n premium schemas per cell plus -databases database tenants")
	fs.IntVar(&o.databases, "databases", 50, "with -cells: database tenants, split over the two cells")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.n < 1 || o.concurrency < 1 {
		return fmt.Errorf("-n and -concurrency must be at least 1")
	}
	if o.cells {
		if o.databases < 4 {
			return fmt.Errorf("-databases must be at least 4")
		}
		return benchCells(ctx, o, out)
	}
	return bench(ctx, o, out)
}

func bench(ctx context.Context, o options, out io.Writer) error {
	admin, err := sql.Open("pgx", o.serverURL)
	if err != nil {
		return err
	}
	defer admin.Close()
	name := "tk_bench_" + randomHex(5)
	if _, err := admin.ExecContext(ctx, `CREATE DATABASE `+name); err != nil {
		return fmt.Errorf("create database: %w", err)
	}
	if !o.keep {
		defer admin.ExecContext(context.WithoutCancel(ctx), `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`)
	}
	dsn, err := withDatabase(o.serverURL, name)
	if err != nil {
		return err
	}
	owner, err := sql.Open("pgx", dsn)
	if err != nil {
		return err
	}
	defer owner.Close()
	owner.SetMaxOpenConns(4)

	m := &tenancy.Migrator{OwnerDSN: dsn, AppRole: o.appRole, Control: migrations.Control(), Tenant: migrations.Tenant()}
	if note, err := tenancy.EnsureAppRole(ctx, owner, o.appRole, ""); err != nil {
		return err
	} else if note != "" {
		fmt.Fprintln(out, "note:", note)
	}
	fleet := &tenancy.Fleet{Migrator: m, Owner: owner, Concurrency: o.concurrency}
	if rep, err := fleet.Up(ctx, false); err != nil || !rep.OK() {
		return fmt.Errorf("initial up: %v", err)
	}
	fmt.Fprintf(out, "bench-migrate: N=%d premium tenants, concurrency %d, database %s, GOMAXPROCS %d\n", o.n, o.concurrency, name, runtime.GOMAXPROCS(0))

	// 1. Provisioning, one tenant at a time, the way POST /admin/v1/tenants does it.
	life := &tenancy.Lifecycle{Registry: &tenancy.PGStore{DB: owner}, Placement: tenancy.Placement{Strategy: tenancy.Hybrid},
		Provisioner: &tenancy.Provisioner{Migrator: m, Owner: owner}}
	took := make([]time.Duration, 0, o.n)
	started := time.Now()
	for i := range o.n {
		id := fmt.Sprintf("bench-%06d", i)
		t0 := time.Now()
		if _, err := life.Create(ctx, tenancy.NewTenant{Identifier: id, Name: id, Tier: tenancy.TierPremium}); err != nil {
			return fmt.Errorf("provision %s: %w", id, err)
		}
		took = append(took, time.Since(t0))
		if (i+1)%max(1, o.n/10) == 0 {
			fmt.Fprintf(out, "  provisioned %d/%d (%s)\n", i+1, o.n, time.Since(started).Round(time.Second))
		}
	}
	slices.Sort(took)
	median, p90 := took[len(took)/2], took[len(took)*9/10]

	// 2. migrate up with nothing to do.
	t0 := time.Now()
	rep, err := fleet.Up(ctx, false)
	noop := time.Since(t0)
	if err != nil || !rep.NothingToDo() {
		return fmt.Errorf("no-op up: %v (changed %d, failed %d)", err, rep.Count(tenancy.Migrated), rep.Count(tenancy.Failed))
	}

	// 3. One new migration to public and all N schemas.
	latest, err := m.LatestTenantVersion()
	if err != nil {
		return err
	}
	next, err := benchMigration(latest)
	if err != nil {
		return err
	}
	m2 := *m
	m2.Tenant = next
	fleet2 := &tenancy.Fleet{Migrator: &m2, Owner: owner, Concurrency: o.concurrency}
	t0 = time.Now()
	rep, err = fleet2.Up(ctx, false)
	apply := time.Since(t0)
	if err != nil || !rep.OK() || rep.Count(tenancy.Migrated) != o.n+1 {
		return fmt.Errorf("new migration: %v (migrated %d, failed %d)", err, rep.Count(tenancy.Migrated), rep.Count(tenancy.Failed))
	}

	// 4. And the no-op again, now over the new version.
	t0 = time.Now()
	if rep, err = fleet2.Up(ctx, false); err != nil || !rep.NothingToDo() {
		return fmt.Errorf("second no-op up: %v", err)
	}
	noop2 := time.Since(t0)

	scale := float64(o.n) / 1000
	fmt.Fprintf(out, "\n%-46s %12s %14s %8s\n", "measure", "measured", "target", "ratio")
	row := func(label string, got, target time.Duration) {
		fmt.Fprintf(out, "%-46s %12s %14s %7.2fx\n", label, got.Round(100*time.Microsecond), target.Round(time.Millisecond), got.Seconds()/target.Seconds())
	}
	row("provision one premium tenant (median)", median, 250*time.Millisecond)
	fmt.Fprintf(out, "%-46s %12s\n", "provision one premium tenant (p90)", p90.Round(100*time.Microsecond))
	row(fmt.Sprintf("migrate up, nothing to do, %d tenants", o.n), noop, time.Duration(scale*float64(3*time.Second)))
	row(fmt.Sprintf("migrate up, nothing to do again, %d tenants", o.n), noop2, time.Duration(scale*float64(3*time.Second)))
	row(fmt.Sprintf("one new migration to public + %d schemas", o.n), apply, time.Duration(scale*float64(30*time.Second)))
	fmt.Fprintf(out, "(targets from docs/design.md, scaled linearly to N; ratio < 1 is within target; shared machine: figures vary with load)\n")
	return nil
}

// benchMigration is the tenant migrations plus the one new migration the
// bench applies: a column and an index on projects.
func benchMigration(latest int64) (fs.FS, error) {
	return withMigration(migrations.Tenant(), fmt.Sprintf("%05d_bench_archived.sql", latest+1), `-- +goose Up
ALTER TABLE projects ADD COLUMN archived_at timestamptz;
CREATE INDEX projects_archived_idx ON projects (tenant_id, archived_at);

-- +goose Down
DROP INDEX projects_archived_idx;
ALTER TABLE projects DROP COLUMN archived_at;
`)
}

func withMigration(base fs.FS, name, body string) (fs.FS, error) {
	out := fstest.MapFS{name: {Data: []byte(body)}}
	names, err := fs.Glob(base, "*.sql")
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		b, err := fs.ReadFile(base, n)
		if err != nil {
			return nil, err
		}
		out[n] = &fstest.MapFile{Data: b}
	}
	return out, nil
}

func withDatabase(base, name string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("parse database url: %w", err)
	}
	u.Path = "/" + name
	return u.String(), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
