package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/testenv"
	"github.com/your-org/tenantkit/migrations"
)

// benchCells measures migrations across two cells on two real servers: the
// server of -database-url and a throwaway cluster started here (initdb +
// pg_ctl, removed at the end). Each cell gets n premium schemas and
// databases/2 database tenants. Figures: provisioning median of a database
// tenant, a no-op `migrate up` over everything, one new migration.
func benchCells(ctx context.Context, o options, out io.Writer) error {
	second, err := testenv.StartCluster()
	if err != nil {
		return fmt.Errorf("start the second cluster: %w", err)
	}
	defer second.Remove()
	name := "tk_bench_" + randomHex(5)
	type cell struct {
		name, server, dsn string
		owner             *sql.DB
		m                 *tenancy.Migrator
	}
	var cells []*cell
	for i, server := range []string{o.serverURL, second.URL} {
		admin, err := sql.Open("pgx", server)
		if err != nil {
			return err
		}
		defer admin.Close()
		if _, err := admin.ExecContext(ctx, `CREATE DATABASE `+name); err != nil {
			return fmt.Errorf("create database: %w", err)
		}
		if !o.keep {
			defer func() {
				rows, err := admin.QueryContext(context.WithoutCancel(ctx), `SELECT datname FROM pg_database WHERE datname LIKE $1`, name+`%`)
				if err != nil {
					return
				}
				var names []string
				for rows.Next() {
					var n string
					_ = rows.Scan(&n)
					names = append(names, n)
				}
				rows.Close()
				for _, n := range names {
					_, _ = admin.ExecContext(context.WithoutCancel(ctx), `ALTER DATABASE `+tenancy.QuoteIdent(n)+` IS_TEMPLATE false`)
					_, _ = admin.ExecContext(context.WithoutCancel(ctx), `DROP DATABASE IF EXISTS `+tenancy.QuoteIdent(n)+` WITH (FORCE)`)
				}
			}()
		}
		dsn, err := withDatabase(server, name)
		if err != nil {
			return err
		}
		owner, err := sql.Open("pgx", dsn)
		if err != nil {
			return err
		}
		defer owner.Close()
		owner.SetMaxOpenConns(8)
		if _, err := tenancy.EnsureAppRole(ctx, owner, o.appRole, ""); err != nil {
			return err
		}
		n := tenancy.DefaultCell
		if i > 0 {
			n = "cell2"
		}
		cells = append(cells, &cell{name: n, server: server, dsn: dsn, owner: owner,
			m: &tenancy.Migrator{OwnerDSN: dsn, AppRole: o.appRole, Control: migrations.Control(), Tenant: migrations.Tenant()}})
	}
	fleets := func(m func(*cell) *tenancy.Migrator) *tenancy.CellFleet {
		cf := &tenancy.CellFleet{}
		for _, c := range cells {
			cf.Fleets = append(cf.Fleets, &tenancy.Fleet{Migrator: m(c), Owner: c.owner, Concurrency: o.concurrency, Cell: c.name})
		}
		return cf
	}
	cf := fleets(func(c *cell) *tenancy.Migrator { return c.m })
	if rep, err := cf.Up(ctx, false); err != nil || !rep.OK() {
		return fmt.Errorf("initial up: %v", err)
	}
	fmt.Fprintf(out, "bench-migrate -cells: 2 cells (two servers) x %d premium schemas + %d database tenants, concurrency %d, database %s\n",
		o.n, o.databases, o.concurrency, name)

	store := &tenancy.PGStore{DB: cells[0].owner}
	life := &tenancy.Lifecycle{Registry: store, Counter: store, Placement: tenancy.Placement{Strategy: tenancy.Hybrid},
		Cells: []string{tenancy.DefaultCell, "cell2"},
		Provisioner: &tenancy.Provisioner{Migrator: cells[0].m, Owner: cells[0].owner, Cells: map[string]*tenancy.Provisioner{
			"cell2": {Migrator: cells[1].m, Owner: cells[1].owner, Cell: "cell2"}}}}

	// Premium schemas, 4 at a time (not measured: bench-migrate measures them alone).
	started := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 2*o.n)
	sem := make(chan struct{}, 4)
	for i := range 2 * o.n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			id := fmt.Sprintf("bench-s%06d", i)
			_, err := life.Create(ctx, tenancy.NewTenant{Identifier: id, Name: id, Tier: tenancy.TierPremium, Cell: cells[i%2].name})
			if err != nil {
				errs <- fmt.Errorf("provision %s: %w", id, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return err
	}
	fmt.Fprintf(out, "  provisioned %d premium schemas (%s)\n", 2*o.n, time.Since(started).Round(time.Second))

	// Database tenants need the cells' templates: migrate up makes them once
	// a cell has a database tenant, so the first of each cell is cloned from
	// nothing, then up runs, then the rest are measured.
	for i, c := range cells {
		id := fmt.Sprintf("bench-d%06d", i)
		if _, err := life.Create(ctx, tenancy.NewTenant{Identifier: id, Name: id, Tier: tenancy.TierPremium, Isolation: tenancy.IsolationDatabase, Cell: c.name}); err != nil {
			return fmt.Errorf("provision %s: %w", id, err)
		}
	}
	if rep, err := cf.Up(ctx, false); err != nil || !rep.OK() {
		return fmt.Errorf("up making the templates: %v", err)
	}
	var took []time.Duration
	for i := 2; i < o.databases; i++ {
		id := fmt.Sprintf("bench-d%06d", i)
		t0 := time.Now()
		if _, err := life.Create(ctx, tenancy.NewTenant{Identifier: id, Name: id, Tier: tenancy.TierPremium, Isolation: tenancy.IsolationDatabase, Cell: cells[i%2].name}); err != nil {
			return fmt.Errorf("provision %s: %w", id, err)
		}
		took = append(took, time.Since(t0))
	}
	slices.Sort(took)

	t0 := time.Now()
	rep, err := cf.Up(ctx, false)
	noop := time.Since(t0)
	if err != nil || !rep.NothingToDo() {
		return fmt.Errorf("no-op up: %v (changed %d, failed %d)", err, rep.Count(tenancy.Migrated), rep.Count(tenancy.Failed))
	}
	targets := len(rep.Results)

	latest, err := cells[0].m.LatestTenantVersion()
	if err != nil {
		return err
	}
	next, err := benchMigration(latest)
	if err != nil {
		return err
	}
	cf2 := fleets(func(c *cell) *tenancy.Migrator { m := *c.m; m.Tenant = next; return &m })
	t0 = time.Now()
	rep, err = cf2.Up(ctx, false)
	apply := time.Since(t0)
	// public x2, schemas, databases and the two templates
	if want := 2 + 2*o.n + o.databases + 2; err != nil || !rep.OK() || rep.Count(tenancy.Migrated) != want {
		return fmt.Errorf("new migration: %v (migrated %d of %d, failed %d)", err, rep.Count(tenancy.Migrated), want, rep.Count(tenancy.Failed))
	}
	t0 = time.Now()
	if rep, err = cf2.Up(ctx, false); err != nil || !rep.NothingToDo() {
		return fmt.Errorf("second no-op up: %v", err)
	}
	noop2 := time.Since(t0)

	fmt.Fprintf(out, "\n%-58s %12s %10s %8s\n", "measure", "measured", "target", "ratio")
	row := func(label string, got, target time.Duration) {
		fmt.Fprintf(out, "%-58s %12s %10s %7.2fx\n", label, got.Round(100*time.Microsecond), target.Round(time.Millisecond), got.Seconds()/target.Seconds())
	}
	fmt.Fprintf(out, "%-58s %12s\n", fmt.Sprintf("provision one database tenant, template clone (median of %d)", len(took)), took[len(took)/2].Round(100*time.Microsecond))
	fmt.Fprintf(out, "%-58s %12s\n", "provision one database tenant (p90)", took[len(took)*9/10].Round(100*time.Microsecond))
	row(fmt.Sprintf("migrate up, nothing to do (%d targets)", targets), noop, 3*time.Second)
	row("migrate up, nothing to do again", noop2, 3*time.Second)
	row(fmt.Sprintf("one new migration to all %d targets", targets), apply, 60*time.Second)
	fmt.Fprintf(out, "(targets from issue 12; shared machine: figures vary with load)\n")
	return nil
}
