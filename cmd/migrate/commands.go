package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"log/slog"
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
	owner    *sql.DB
	migrator *tenancy.Migrator
}

func newMigration(ctx context.Context, cfg config.Config, c cli) (*migration, error) {
	if created, err := tenancy.EnsureDatabase(ctx, cfg.MigrateDatabaseURL); err != nil {
		return nil, err
	} else if created {
		fmt.Fprintln(c.stderr, "created database")
	}
	pc, err := pgx.ParseConfig(cfg.MigrateDatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("parse MIGRATE_DATABASE_URL: %w", err)
	}
	if pc.RuntimeParams["application_name"] == "" {
		pc.RuntimeParams["application_name"] = "tenantkit-migrate"
	}
	owner := stdlib.OpenDB(*pc)
	// The lock's transaction, the plan and status queries, the lock holder
	// lookup; each schema is migrated on its own short-lived connection.
	owner.SetMaxOpenConns(4)
	role, _ := cfg.AppRole()
	return &migration{
		cfg: cfg, cli: c, owner: owner,
		migrator: &tenancy.Migrator{OwnerDSN: cfg.MigrateDatabaseURL, AppRole: role,
			Control: c.control, Tenant: c.tenant,
			// Says which tables the guard secured (docs/operations.md, Migrations).
			Log: slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))},
	}, nil
}

func (m *migration) close() { m.owner.Close() }

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
	return &tenancy.Fleet{
		Migrator: m.migrator, Owner: m.owner, Concurrency: f.concurrency, Progress: p,
		Lock: tenancy.LockOptions{Wait: f.wait, OnWait: func(holder string) {
			fmt.Fprintf(m.cli.stderr, "waiting up to %s for another migrate run to finish (%s)\n", f.wait, holder)
		}},
	}
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
	if role, password := m.cfg.AppRole(); role != "" {
		note, err := tenancy.EnsureAppRole(ctx, m.owner, role, password)
		if err != nil {
			return err
		}
		if note != "" {
			fmt.Fprintln(m.cli.stderr, "warning:", note)
		}
	}
	p := newProgress(m.cli.stderr)
	rep, err := m.fleet(f, p).Up(ctx, f.all)
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
	rep, err := m.fleet(f, p).DownTo(ctx, f.to)
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
	if t.Isolation != tenancy.IsolationSchema {
		fmt.Fprintf(m.cli.stdout, "%s is a shared-table (rls) tenant: it is migrated with public by `migrate up`\n", t.Identifier)
		return nil
	}
	if t.Status == tenancy.StatusProvisioning {
		fmt.Fprintf(m.cli.stderr, "%s is still being provisioned; provisioning migrates it\n", t.Identifier)
		return exitCode(1)
	}
	f.concurrency = 1
	p := newProgress(m.cli.stderr)
	rep, err := m.fleet(f, p).UpTenant(ctx, t.ID)
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
	st, err := (&tenancy.Fleet{Migrator: m.migrator, Owner: m.owner}).Status(ctx)
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
