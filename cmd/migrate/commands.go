package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/your-org/tenantkit/internal/config"
	"github.com/your-org/tenantkit/internal/tenancy"
)

type migration struct {
	cfg      config.Config
	cli      cli
	owner    *sql.DB // the default cell's
	migrator *tenancy.Migrator
	cells    []*cellMigration // every cell, default first
}

// cellMigration is one cell's owner pool and migrator.
type cellMigration struct {
	cell     tenancy.Cell
	owner    *sql.DB
	migrator *tenancy.Migrator
	appRole  string
	password string
}

func newMigration(ctx context.Context, cfg config.Config, c cli) (*migration, error) {
	m := &migration{cfg: cfg, cli: c}
	for _, cell := range cfg.Cells {
		cm, err := openCell(ctx, cfg, c, cell)
		if err != nil {
			m.close()
			return nil, err
		}
		m.cells = append(m.cells, cm)
	}
	m.owner, m.migrator = m.cells[0].owner, m.cells[0].migrator
	return m, nil
}

func openCell(ctx context.Context, cfg config.Config, c cli, cell tenancy.Cell) (*cellMigration, error) {
	if created, err := tenancy.EnsureDatabase(ctx, cell.OwnerDSN); err != nil {
		return nil, fmt.Errorf("cell %s: %w", cell.Name, err)
	} else if created {
		fmt.Fprintf(c.stderr, "created database of cell %s\n", cell.Name)
	}
	pc, err := pgx.ParseConfig(cell.OwnerDSN)
	if err != nil {
		return nil, fmt.Errorf("parse the owner DSN of cell %s: %w", cell.Name, err)
	}
	if pc.RuntimeParams["application_name"] == "" {
		pc.RuntimeParams["application_name"] = "tenantkit-migrate"
	}
	owner := stdlib.OpenDB(*pc)
	// The lock's transaction, the plan and status queries, the lock holder
	// lookup; each schema is migrated on its own short-lived connection.
	owner.SetMaxOpenConns(4)
	role, password := cfg.AppRole()
	if cell.AppDSN != "" { // the cell's own app role, when TENANCY_CELLS names it
		if u, err := url.Parse(cell.AppDSN); err == nil && u.User != nil {
			role = u.User.Username()
			password, _ = u.User.Password()
		}
	}
	return &cellMigration{cell: cell, owner: owner, appRole: role, password: password,
		migrator: &tenancy.Migrator{OwnerDSN: cell.OwnerDSN, AppRole: role,
			Control: c.control, Tenant: c.tenant,
			// Says which tables the guard secured (docs/operations.md, Migrations).
			Log: slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))}}, nil
}

func (m *migration) close() {
	for _, c := range m.cells {
		c.owner.Close()
	}
}

// runFlags are the flags of the commands that write.
type runFlags struct {
	concurrency int
	json        bool
	wait        time.Duration
	all         bool
	to          int64
}

// defaultConcurrency sizes the worker pool to the configured pool size, capped:
// each worker is one owner connection running DDL, and past a few per
// database core they only queue on the catalog.
func (m *migration) defaultConcurrency() int { return max(1, min(m.cfg.Pool.MaxIdle, 8)) }

func (m *migration) parse(name string, args []string, extra func(*flag.FlagSet, *runFlags)) (*flag.FlagSet, runFlags, error) {
	f := runFlags{to: -1}
	fs, err := parseFlags(name, args, m.cli.stderr, func(fs *flag.FlagSet) {
		fs.BoolVar(&f.json, "json", false, "machine-readable report on stdout")
		fs.DurationVar(&f.wait, "wait", 15*time.Minute, "how long to wait for a running migrate (0: fail at once)")
		if extra != nil {
			extra(fs, &f)
		}
	})
	return fs, f, err
}

func concurrencyFlag(def int) func(*flag.FlagSet, *runFlags) {
	return func(fs *flag.FlagSet, f *runFlags) {
		fs.IntVar(&f.concurrency, "concurrency", def, "premium schemas migrated at once")
	}
}

func (m *migration) fleet(f runFlags, p *progress) *tenancy.Fleet {
	return m.cellFleet(m.cells[0], f, p)
}

func (m *migration) cellFleet(c *cellMigration, f runFlags, p *progress) *tenancy.Fleet {
	var pr tenancy.Progress
	if p != nil {
		pr = p
	}
	return &tenancy.Fleet{
		Migrator: c.migrator, Owner: c.owner, Concurrency: f.concurrency, Progress: pr, Cell: c.cell.Name,
		Lock: tenancy.LockOptions{Wait: f.wait, OnWait: func(holder string) {
			fmt.Fprintf(m.cli.stderr, "waiting up to %s for another migrate run on cell %s to finish (%s)\n", f.wait, c.cell.Name, holder)
		}},
	}
}

// fleets runs over every cell (docs/scaling.md, "Cells").
func (m *migration) fleets(f runFlags, p *progress) *tenancy.CellFleet {
	out := &tenancy.CellFleet{}
	for _, c := range m.cells {
		out.Fleets = append(out.Fleets, m.cellFleet(c, f, p))
	}
	return out
}

func (m *migration) up(ctx context.Context, args []string) error {
	fs, f, err := m.parse("up", args, func(fs *flag.FlagSet, f *runFlags) {
		concurrencyFlag(m.defaultConcurrency())(fs, f)
		fs.BoolVar(&f.all, "all", false, "run every schema through goose, ignoring the version bookkeeping")
	})
	if err != nil {
		return err
	}
	if fs.NArg() != 0 || f.concurrency < 1 {
		fmt.Fprintln(m.cli.stderr, "usage: migrate up [--concurrency N>=1] [--json] [--wait D] [--all]")
		return exitCode(2)
	}
	for _, c := range m.cells {
		if c.appRole == "" {
			continue
		}
		note, err := tenancy.EnsureAppRole(ctx, c.owner, c.appRole, c.password)
		if err != nil && c.cell.Name == tenancy.DefaultCell {
			return err
		}
		if err != nil { // the cell's run reports it failed; the others go on
			fmt.Fprintf(m.cli.stderr, "warning: cell %s: %v\n", c.cell.Name, err)
		}
		if note != "" {
			fmt.Fprintln(m.cli.stderr, "warning:", note)
		}
	}
	p := newProgress(m.cli.stderr)
	rep, err := m.fleets(f, p).Up(ctx, f.all)
	p.finish()
	return m.report("up", rep, err, f.json)
}

func (m *migration) down(ctx context.Context, args []string) error {
	fs, f, err := m.parse("down", args, func(fs *flag.FlagSet, f *runFlags) {
		concurrencyFlag(m.defaultConcurrency())(fs, f)
		fs.Int64Var(&f.to, "to", -1, "target version")
	})
	if err != nil {
		return err
	}
	if fs.NArg() != 0 || f.to < 0 || f.concurrency < 1 {
		fmt.Fprintln(m.cli.stderr, "usage: migrate down --to N [--concurrency N>=1] [--json] [--wait D]")
		return exitCode(2)
	}
	p := newProgress(m.cli.stderr)
	rep, err := m.fleets(f, p).DownTo(ctx, f.to)
	p.finish()
	return m.report("down", rep, err, f.json)
}

func (m *migration) tenant(ctx context.Context, args []string) error {
	fs, f, err := m.parse("tenant", args, nil)
	if err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(m.cli.stderr, "usage: migrate tenant [--json] [--wait D] ID|IDENTIFIER")
		return exitCode(2)
	}
	arg := fs.Arg(0)
	store := &tenancy.PGStore{DB: m.owner}
	var t *tenancy.Tenant
	if id, perr := uuid.Parse(arg); perr == nil {
		t, err = store.TenantByID(ctx, id)
	} else {
		t, err = store.TenantByIdentifier(ctx, arg)
	}
	if err != nil {
		return fmt.Errorf("tenant %s: %w", arg, err)
	}
	if t.Isolation == tenancy.IsolationRLS {
		fmt.Fprintf(m.cli.stdout, "%s is a shared-table (rls) tenant: it is migrated with public by `migrate up`\n", t.Identifier)
		return nil
	}
	if t.Status == tenancy.StatusProvisioning {
		fmt.Fprintf(m.cli.stderr, "%s is still being provisioned; provisioning migrates it\n", t.Identifier)
		return exitCode(1)
	}
	var cell *cellMigration
	for _, c := range m.cells {
		if c.cell.Name == t.CellOf() {
			cell = c
		}
	}
	if cell == nil {
		return fmt.Errorf("tenant %s is on cell %s, which MIGRATE_TENANCY_CELLS does not name", t.Identifier, t.CellOf())
	}
	f.concurrency = 1
	p := newProgress(m.cli.stderr)
	var rep *tenancy.Report
	if t.Isolation == tenancy.IsolationDatabase {
		rep, err = m.cellFleet(cell, f, p).UpDatabaseOf(ctx, t.ID)
	} else {
		rep, err = m.cellFleet(cell, f, p).UpTenant(ctx, t.ID)
	}
	p.finish()
	return m.report("tenant", rep, err, f.json)
}

// report prints the run and turns it into the exit status: 0 only if every
// target succeeded.
func (m *migration) report(op string, rep *tenancy.Report, err error, asJSON bool) error {
	if rep == nil && err != nil {
		if asJSON { // machines get a document even when the run never started
			_ = writeJSON(m.cli.stdout, jsonReport{Command: op, Error: errText(err), Counts: map[string]int{}, Targets: []jsonTarget{}})
		}
		fmt.Fprintln(m.cli.stderr, "migrate:", errText(err))
		return exitCode(1)
	}
	if asJSON {
		if werr := writeJSON(m.cli.stdout, reportJSON(rep, err)); werr != nil {
			return werr
		}
	} else {
		writeReport(m.cli.stdout, rep)
	}
	if err != nil { // the run stopped partway (say, the plan query failed)
		return err
	}
	if !rep.OK() {
		return exitCode(1)
	}
	return nil
}

func (m *migration) status(ctx context.Context, args []string) error {
	var asJSON, check bool
	fs, err := parseFlags("status", args, m.cli.stderr, func(fs *flag.FlagSet) {
		fs.BoolVar(&asJSON, "json", false, "machine-readable status on stdout")
		fs.BoolVar(&check, "check", false, "exit 1 when any target is not current or any relation is unguarded")
	})
	if err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fmt.Fprintln(m.cli.stderr, "usage: migrate status [--json] [--check]")
		return exitCode(2)
	}
	st, err := m.fleets(runFlags{}, nil).Status(ctx)
	if err != nil {
		return err
	}
	placement, err := tenancy.TenantPlacement(ctx, m.owner) // nil unless Citus
	if err != nil {
		return err
	}
	if asJSON {
		js := statusJSON(st)
		js.CitusPlacement = placementJSON(placement)
		if err := writeJSON(m.cli.stdout, js); err != nil {
			return err
		}
	} else {
		writeStatus(m.cli.stdout, st)
		writePlacement(m.cli.stdout, placement)
	}
	if check && (len(st.Drift()) > 0 || len(st.Unguarded) > 0) {
		return exitCode(1)
	}
	return nil
}

// isTerminal reports whether w is a character device (progress redraws).
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
