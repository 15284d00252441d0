package tenancy

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/pressly/goose/v3"
)

// Fleet migrates every target of the database: the control plane, public and
// every premium schema, each through Migrator (the code path provisioning
// uses), holding the migration lock so two runs never interleave.
type Fleet struct {
	Migrator    *Migrator
	Owner       *sql.DB // owner pool for the lock and the plan; needs 2 connections
	Concurrency int     // premium schemas migrated at once; <= 0 means 4
	Lock        LockOptions
	Progress    Progress // optional
	// Cell is the cell Owner reaches ("" = default): the plan takes only
	// the premium schemas of tenants placed on it.
	Cell string
}

// Progress hears about a run as it goes; the fleet calls it from one
// goroutine at a time.
type Progress interface {
	Begin(phase string, total int)
	Done(r TargetResult)
}

// TargetKind says what a target is.
type TargetKind string

const (
	KindControl TargetKind = "control" // schema tenancy
	KindShared  TargetKind = "shared"  // public, standard tenants' tables
	KindTenant  TargetKind = "tenant"  // one premium tenant's schema
	// KindDatabase is a database tenant's own database (its control schema
	// and public), or a cell's template for them (no tenant id).
	KindDatabase TargetKind = "database"
)

// Outcome is what a run did to one target.
type Outcome string

const (
	Migrated Outcome = "migrated" // migrations applied (or reverted, for down)
	Current  Outcome = "current"  // nothing to do
	Failed   Outcome = "failed"
	Skipped  Outcome = "skipped" // not attempted: an earlier step failed or the run was interrupted
)

// Target is one schema a run works on, as the plan query saw it.
type Target struct {
	Schema     string
	Kind       TargetKind
	TenantID   uuid.UUID // zero for control and shared
	Identifier string
	Version    int64  // bookkept version; -1 when unknown
	Exists     bool   // the schema exists
	versioned  bool   // it has a goose version table
	Cell       string // the cell it is on ("" before cells: default)
	Database   string // for KindDatabase: the database
}

// TargetResult is one target's outcome.
type TargetResult struct {
	Target
	Outcome  Outcome
	From, To int64 // -1 when unknown
	Applied  []int64
	Note     string
	Err      error
	Duration time.Duration
}

// Report is a whole run.
type Report struct {
	Op            string // up, down, tenant
	LatestControl int64
	LatestTenant  int64
	Results       []TargetResult
	Duration      time.Duration
	Citus         []string // what `up` distributed on Citus (SyncCitus)
}

// Count returns how many targets ended with o.
func (r *Report) Count(o Outcome) int {
	n := 0
	for _, res := range r.Results {
		if res.Outcome == o {
			n++
		}
	}
	return n
}

// OK reports whether every target succeeded (migrated or already current).
func (r *Report) OK() bool { return r.Count(Failed) == 0 && r.Count(Skipped) == 0 }

// NothingToDo reports whether the run changed nothing and everything is current.
func (r *Report) NothingToDo() bool { return r.Count(Current) == len(r.Results) }

func (f *Fleet) newReport(op string) (*Report, error) {
	lt, err := f.Migrator.LatestTenantVersion()
	if err != nil {
		return nil, err
	}
	lc, err := f.Migrator.LatestControlVersion()
	if err != nil {
		return nil, err
	}
	return &Report{Op: op, LatestControl: lc, LatestTenant: lt}, nil
}

// Up brings the control plane, then public, then every premium schema that
// is behind to the latest version. A failed premium schema does not stop the
// others; a failed control plane or public stops the run (the rest is
// skipped), as premium schemas must not move ahead of the shared ones. With
// all, every schema goes through goose whatever its bookkept version (slow;
// repairs bookkeeping). The error is for failures of the run itself; a
// target's failure is in the report.
func (f *Fleet) Up(ctx context.Context, all bool) (*Report, error) {
	start := time.Now()
	rep, err := f.newReport("up")
	if err != nil {
		return nil, err
	}
	release, err := lockMigrations(ctx, f.Owner, f.Lock)
	if err != nil {
		return nil, err
	}
	defer release()
	defer func() { rep.Duration = time.Since(start) }()

	ctrl := f.upControl(ctx, rep.LatestControl)
	rep.Results = append(rep.Results, ctrl)
	if ctrl.Outcome == Failed {
		return rep, nil
	}
	targets, err := f.plan(ctx, uuid.Nil)
	if err != nil {
		return rep, err
	}
	if err := f.pruneBookkeeping(ctx); err != nil {
		return rep, err
	}
	tenants := targets[1:]
	res := f.each(ctx, "public", targets[:1], func(ctx context.Context, c *schemaConn, t Target) TargetResult {
		return f.upTarget(ctx, c, t, rep.LatestTenant, all)
	})[0]
	rep.Results = append(rep.Results, res)
	if res.Outcome != Migrated && res.Outcome != Current {
		rep.Results = append(rep.Results, skipAll(tenants, "public did not migrate")...)
		return rep, nil
	}
	var behind []Target
	for _, t := range tenants {
		if all || !t.Exists || t.Version < rep.LatestTenant {
			behind = append(behind, t)
			continue
		}
		rep.Results = append(rep.Results, current(t, rep.LatestTenant))
	}
	rep.Results = append(rep.Results, f.each(ctx, "premium schemas", behind, func(ctx context.Context, c *schemaConn, t Target) TargetResult {
		return f.upTarget(ctx, c, t, rep.LatestTenant, all)
	})...)
	// On Citus: distribute what is not yet (docs/scaling.md, Citus).
	if rep.Citus, err = f.Migrator.SyncCitus(ctx, f.Owner); err != nil {
		return rep, err
	}
	return rep, f.failUnguarded(ctx, rep)
}

// IsolationCheck is the catalog check of this database as the owner, acting
// as the app role (`migrate up` and `migrate status`).
func (f *Fleet) IsolationCheck() (IsolationCheck, error) {
	decl, err := ParseDeclarations(f.Migrator.Tenant)
	if err != nil {
		return IsolationCheck{}, fmt.Errorf("tenant migrations: %w", err)
	}
	return IsolationCheck{DSN: f.Migrator.OwnerDSN, AppRole: f.Migrator.AppRole, Declarations: decl}, nil
}

// failUnguarded runs the catalog check after an up, whatever it applied (a
// relation created by hand is found too), and fails each target holding an
// unguarded relation; one in a schema that is not a target fails public.
func (f *Fleet) failUnguarded(ctx context.Context, rep *Report) error {
	c, err := f.IsolationCheck()
	if err != nil {
		return err
	}
	problems, err := c.Run(ctx)
	if err != nil {
		return err
	}
	bySchema := map[string][]Problem{}
	for _, p := range problems {
		s := p.Schema
		if !slices.ContainsFunc(rep.Results, func(r TargetResult) bool { return r.Schema == s }) {
			s = "public"
		}
		bySchema[s] = append(bySchema[s], p)
	}
	for i := range rep.Results {
		r := &rep.Results[i]
		ps := bySchema[r.Schema]
		if len(ps) == 0 {
			continue
		}
		ierr := &IsolationError{Where: "schema " + r.Schema + " after `migrate up`", Problems: ps}
		if r.Outcome == Failed && r.Err != nil {
			r.Err = errors.Join(r.Err, ierr)
		} else {
			r.Outcome, r.Err = Failed, ierr
		}
	}
	return nil
}

// UpTenant migrates one premium tenant's schema, under the migration lock.
func (f *Fleet) UpTenant(ctx context.Context, id uuid.UUID) (*Report, error) {
	start := time.Now()
	rep, err := f.newReport("tenant")
	if err != nil {
		return nil, err
	}
	release, err := lockMigrations(ctx, f.Owner, f.Lock)
	if err != nil {
		return nil, err
	}
	defer release()
	targets, err := f.plan(ctx, id)
	if err != nil {
		return nil, err
	}
	if len(targets) != 1 {
		return nil, fmt.Errorf("tenant %s: not an active or suspended premium tenant", id)
	}
	rep.Results = f.each(ctx, "tenant", targets, func(ctx context.Context, c *schemaConn, t Target) TargetResult {
		return f.upTarget(ctx, c, t, rep.LatestTenant, false)
	})
	rep.Duration = time.Since(start)
	return rep, nil
}

// DownTo reverses tenant migrations above version in every premium schema,
// then in public (skipped if a premium schema failed, so public never falls
// below a premium schema). The control plane is left alone.
func (f *Fleet) DownTo(ctx context.Context, version int64) (*Report, error) {
	start := time.Now()
	if version < 0 {
		return nil, fmt.Errorf("down: version must be >= 0, got %d", version)
	}
	rep, err := f.newReport("down")
	if err != nil {
		return nil, err
	}
	release, err := lockMigrations(ctx, f.Owner, f.Lock)
	if err != nil {
		return nil, err
	}
	defer release()
	defer func() { rep.Duration = time.Since(start) }()
	targets, err := f.plan(ctx, uuid.Nil)
	if err != nil {
		return nil, err
	}
	shared, tenants := targets[0], targets[1:]
	var above []Target
	for _, t := range tenants {
		if t.Exists && (t.Version < 0 || t.Version > version) {
			above = append(above, t)
			continue
		}
		r := TargetResult{Target: t, Outcome: Current, From: t.Version, To: t.Version}
		if !t.Exists {
			r.Outcome, r.Err = Failed, errors.New("schema "+t.Schema+" does not exist")
		}
		rep.Results = append(rep.Results, r)
	}
	down := func(ctx context.Context, c *schemaConn, t Target) TargetResult {
		return f.downTarget(ctx, c, t, version)
	}
	rep.Results = append(rep.Results, f.each(ctx, "premium schemas", above, down)...)
	if !rep.OK() {
		rep.Results = append(rep.Results, skipAll([]Target{shared}, "a premium schema failed to go down")...)
		return rep, nil
	}
	rep.Results = append(rep.Results, f.each(ctx, "public", []Target{shared}, down)...)
	return rep, nil
}

func (f *Fleet) upControl(ctx context.Context, latest int64) TargetResult {
	f.begin("control plane", 1)
	start := time.Now()
	t := Target{Schema: ControlSchema, Kind: KindControl, Version: -1, Exists: true}
	applied, err := f.Migrator.UpControl(ctx)
	r := result(t, applied, err, latest)
	r.Duration = time.Since(start)
	f.done(r)
	return r
}

func (f *Fleet) upTarget(ctx context.Context, c *schemaConn, t Target, latest int64, all bool) TargetResult {
	start := time.Now()
	switch {
	case !t.Exists:
		return TargetResult{Target: t, Outcome: Failed, From: -1, To: -1,
			Err: fmt.Errorf("schema %s does not exist: restore it, or delete tenant %s", t.Schema, t.Identifier)}
	case !all && t.Version >= latest:
		return current(t, latest)
	}
	applied, err := c.upSchema(ctx, t.Schema)
	r := result(t, applied, err, latest)
	r.Duration = time.Since(start)
	return r
}

func (f *Fleet) downTarget(ctx context.Context, c *schemaConn, t Target, version int64) TargetResult {
	start := time.Now()
	reverted, err := c.downSchemaTo(ctx, t.Schema, version)
	r := TargetResult{Target: t, Outcome: Current, From: t.Version, To: version, Err: err, Duration: time.Since(start)}
	for _, m := range reverted {
		r.Applied = append(r.Applied, m.Source.Version)
	}
	switch {
	case err != nil:
		r.Outcome, r.To = Failed, -1
	case len(reverted) > 0:
		r.Outcome = Migrated
	}
	return r
}

// result turns goose's answer for an up into a TargetResult. A successful up
// leaves the target at latest (goose refuses to skip a missing migration).
func result(t Target, applied []*goose.MigrationResult, err error, latest int64) TargetResult {
	r := TargetResult{Target: t, Outcome: Current, From: t.Version, To: max(latest, t.Version), Err: err}
	for _, m := range applied {
		r.Applied = append(r.Applied, m.Source.Version)
	}
	if len(r.Applied) > 0 {
		r.Outcome = Migrated
		if r.From < 0 {
			r.From = r.Applied[0] - 1 // unknown before: at least the one below the first applied
		}
	}
	if err != nil {
		r.Outcome, r.To = Failed, r.From
		if n := len(r.Applied); n > 0 {
			r.To = r.Applied[n-1]
		}
	}
	if r.From < 0 && r.Outcome == Current {
		r.From = r.To
	}
	return r
}

func current(t Target, latest int64) TargetResult {
	r := TargetResult{Target: t, Outcome: Current, From: t.Version, To: t.Version}
	if t.Version > latest {
		r.Note = fmt.Sprintf("ahead of this binary (version %d > latest %d)", t.Version, latest)
	}
	return r
}

func skipAll(ts []Target, why string) []TargetResult {
	out := make([]TargetResult, len(ts))
	for i, t := range ts {
		out[i] = TargetResult{Target: t, Outcome: Skipped, From: t.Version, To: t.Version, Note: why}
	}
	return out
}

// workers is how many targets the fleet works on at once (Concurrency, 4
// when unset).
func (f *Fleet) workers() int {
	if f.Concurrency <= 0 {
		return 4
	}
	return f.Concurrency
}

// each runs fn over targets with bounded concurrency, each worker on its own
// reused connection, reporting progress as results come in; results keep the
// order of targets.
func (f *Fleet) each(ctx context.Context, phase string, targets []Target, fn func(context.Context, *schemaConn, Target) TargetResult) []TargetResult {
	out := make([]TargetResult, len(targets))
	if len(targets) == 0 {
		return out
	}
	f.begin(phase, len(targets))
	workers := min(f.workers(), len(targets))
	jobs := make(chan int)
	type done struct {
		i int
		r TargetResult
	}
	results := make(chan done)
	var wg sync.WaitGroup
	defer wg.Wait() // every worker's connection is closed when each returns
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := f.Migrator.newSchemaConn()
			defer c.close()
			for i := range jobs {
				if ctx.Err() != nil {
					results <- done{i, skipAll(targets[i:i+1], "interrupted")[0]}
					continue
				}
				results <- done{i, fn(ctx, c, targets[i])}
			}
		}()
	}
	go func() {
		for i := range targets {
			jobs <- i
		}
		close(jobs)
	}()
	for range targets {
		d := <-results
		out[d.i] = d.r
		f.done(d.r)
	}
	return out
}

func (f *Fleet) begin(phase string, total int) {
	if f.Progress != nil {
		f.Progress.Begin(phase, total)
	}
}

func (f *Fleet) done(r TargetResult) {
	if f.Progress != nil {
		f.Progress.Done(r)
	}
}
