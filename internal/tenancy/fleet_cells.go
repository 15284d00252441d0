package tenancy

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/stdlib"
)

// databasePrefix marks the bookkeeping rows of tenant databases (and of the
// cell's template) in the cell's tenancy.schema_versions: one query on the
// cell tells which of its databases are behind. No schema name contains ':'.
const databasePrefix = "database:"

// CellFleet runs a migrate command over every cell: each cell's database
// (control plane, public, the premium schemas placed there) through its
// Fleet, then the cell's tenant databases and template. A cell that fails
// does not stop the others; its targets report the failure.
type CellFleet struct {
	Fleets []*Fleet // one per cell, default first, each with Cell set
}

// Up migrates every cell; see Fleet.Up.
func (c *CellFleet) Up(ctx context.Context, all bool) (*Report, error) {
	return c.run(ctx, "up", func(f *Fleet) (*Report, error) {
		rep, err := f.Up(ctx, all)
		if err != nil || rep == nil || !publicOK(rep) {
			return rep, err
		}
		rep.Results = append(rep.Results, f.UpDatabases(ctx, all, rep.LatestTenant)...)
		return rep, nil
	})
}

// DownTo reverts every cell's tenant databases, then its schemas; see Fleet.DownTo.
func (c *CellFleet) DownTo(ctx context.Context, version int64) (*Report, error) {
	return c.run(ctx, "down", func(f *Fleet) (*Report, error) {
		dbs, err := f.DownDatabasesTo(ctx, version)
		if err != nil {
			return nil, err
		}
		rep, err := f.DownTo(ctx, version)
		if rep != nil {
			rep.Results = append(dbs, rep.Results...)
		}
		return rep, err
	})
}

func publicOK(rep *Report) bool {
	for _, r := range rep.Results {
		if r.Kind == KindShared {
			return r.Outcome == Migrated || r.Outcome == Current
		}
	}
	return false
}

func (c *CellFleet) run(ctx context.Context, op string, fn func(*Fleet) (*Report, error)) (*Report, error) {
	start := time.Now()
	var out *Report
	var errs []error
	for i, f := range c.Fleets {
		rep, err := fn(f)
		if rep == nil && i == 0 { // the control plane's cell: the run itself failed (locked, unreachable)
			return nil, err
		}
		if rep == nil {
			if out == nil {
				if out, err = f.newReport(op); err != nil {
					return nil, err
				}
			}
			// The cell could not be planned (down, locked): one failed target says so.
			out.Results = append(out.Results, TargetResult{Target: Target{Schema: ControlSchema, Kind: KindControl,
				Version: -1, Cell: f.cellName()}, Outcome: Failed, From: -1, To: -1, Err: fmt.Errorf("cell %s: %w", f.cellName(), err)})
			continue
		}
		for i := range rep.Results {
			rep.Results[i].Cell = f.cellName()
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("cell %s: %w", f.cellName(), err))
		}
		if out == nil {
			out = rep
			continue
		}
		out.Results = append(out.Results, rep.Results...)
	}
	if out != nil {
		out.Op, out.Duration = op, time.Since(start)
	}
	return out, errors.Join(errs...)
}

// Status reports every cell's targets, its tenant databases included.
func (c *CellFleet) Status(ctx context.Context) (*StatusReport, error) {
	var out *StatusReport
	for _, f := range c.Fleets {
		st, err := f.Status(ctx)
		if err != nil {
			return nil, fmt.Errorf("cell %s: %w", f.cellName(), err)
		}
		dbs, err := f.StatusDatabases(ctx, st.LatestTenant)
		if err != nil {
			return nil, fmt.Errorf("cell %s: %w", f.cellName(), err)
		}
		for i := range st.Targets {
			st.Targets[i].Cell = f.cellName()
		}
		st.Targets = append(st.Targets, dbs...)
		if out == nil {
			out = st
			continue
		}
		out.Targets = append(out.Targets, st.Targets...)
		out.Unguarded = append(out.Unguarded, st.Unguarded...)
	}
	return out, nil
}

// planDatabases lists the cell's tenant databases and its template with
// their bookkept versions, in one query on the cell.
func (f *Fleet) planDatabases(ctx context.Context) ([]Target, error) {
	base, err := DatabaseOf(f.Migrator.OwnerDSN)
	if err != nil {
		return nil, err
	}
	rows, err := f.Owner.QueryContext(ctx, `SELECT d.id, d.identifier, d.name, coalesce(v.version, -1),
			EXISTS (SELECT 1 FROM pg_database p WHERE p.datname = d.name)
		  FROM (SELECT NULL::uuid AS id, ''::text AS identifier, $3::text AS name, 0 AS ord
		        UNION ALL
		        SELECT id, identifier, $1 || '_tenant_' || replace(identifier, '-', '_'), 1
		          FROM tenancy.tenants WHERE isolation = 'database' AND status <> 'provisioning' AND cell = $2) d
		  LEFT JOIN tenancy.schema_versions v ON v.schema_name = '`+databasePrefix+`' || d.name
		 ORDER BY d.ord, d.name`, base, f.cellName(), TemplateDatabaseName(base))
	if err != nil {
		return nil, fmt.Errorf("plan databases: %w", err)
	}
	defer rows.Close()
	var out []Target
	for rows.Next() {
		t := Target{Kind: KindDatabase, Schema: "public", Cell: f.cellName()}
		var id uuid.NullUUID
		if err := rows.Scan(&id, &t.Identifier, &t.Database, &t.Version, &t.Exists); err != nil {
			return nil, fmt.Errorf("plan databases: %w", err)
		}
		t.TenantID = id.UUID
		if id.Valid && (!ValidIdentifier(t.Identifier) || t.Database != DatabaseName(base, t.Identifier)) {
			return nil, fmt.Errorf("plan databases: tenant %s has invalid identifier %q", id.UUID, t.Identifier)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// databaseMigrator is Migrator aimed at one database of the cell.
func (f *Fleet) databaseMigrator(name string) (*Migrator, error) {
	dsn, err := WithDatabase(f.Migrator.OwnerDSN, name)
	if err != nil {
		return nil, err
	}
	m := *f.Migrator
	m.OwnerDSN = dsn
	return &m, nil
}

// record writes a database's version to the cell's bookkeeping.
func (f *Fleet) record(ctx context.Context, name string, version int64) error {
	_, err := f.Owner.ExecContext(ctx, `INSERT INTO tenancy.schema_versions (schema_name, version) VALUES ($1, $2)
		ON CONFLICT (schema_name) DO UPDATE SET version = excluded.version, updated_at = now()`, databasePrefix+name, version)
	if err != nil {
		return fmt.Errorf("record database %s: %w", name, err)
	}
	return nil
}

// UpDatabases brings the cell's template and tenant databases that are
// behind (by the cell's bookkeeping) to latest, each as provisioning
// migrates one: its control schema, then public. A run where all are current
// costs the one plan query.
func (f *Fleet) UpDatabases(ctx context.Context, all bool, latest int64) []TargetResult {
	return f.upDatabases(ctx, all, latest, uuid.Nil)
}

// UpDatabaseOf migrates one database tenant's database (`migrate tenant`).
func (f *Fleet) UpDatabaseOf(ctx context.Context, id uuid.UUID) (*Report, error) {
	rep, err := f.newReport("tenant")
	if err != nil {
		return nil, err
	}
	start := time.Now()
	rep.Results = f.upDatabases(ctx, false, rep.LatestTenant, id)
	for i := range rep.Results {
		rep.Results[i].Cell = f.cellName()
	}
	rep.Duration = time.Since(start)
	if len(rep.Results) == 0 {
		return nil, fmt.Errorf("tenant %s: not an active or suspended database tenant of cell %s", id, f.cellName())
	}
	return rep, nil
}

func (f *Fleet) upDatabases(ctx context.Context, all bool, latest int64, only uuid.UUID) []TargetResult {
	release, err := lockMigrations(ctx, f.Owner, f.Lock)
	if err != nil {
		return []TargetResult{{Target: Target{Kind: KindDatabase, Schema: "public", Cell: f.cellName(), Version: -1},
			Outcome: Failed, From: -1, To: -1, Err: err}}
	}
	defer release()
	targets, err := f.planDatabases(ctx)
	if err != nil {
		return []TargetResult{{Target: Target{Kind: KindDatabase, Schema: "public", Cell: f.cellName(), Version: -1},
			Outcome: Failed, From: -1, To: -1, Err: err}}
	}
	var out, behind []TargetResult
	for _, t := range targets {
		if only != uuid.Nil && t.TenantID != only {
			continue
		}
		// A cell without database tenants gets no template until its first
		// (provisioning then creates and migrates an empty database).
		if t.TenantID == uuid.Nil && !t.Exists && len(targets) == 1 {
			continue
		}
		if all || !t.Exists || t.Version < latest {
			behind = append(behind, TargetResult{Target: t})
			continue
		}
		out = append(out, current(t, latest))
	}
	return append(out, f.eachDatabase(ctx, "tenant databases", behind, func(ctx context.Context, t Target) TargetResult {
		start := time.Now()
		if t.TenantID == uuid.Nil { // the template: created when missing
			err := f.Migrator.EnsureTemplate(ctx)
			if err == nil {
				err = f.record(ctx, t.Database, latest)
			}
			r := TargetResult{Target: t, Outcome: Migrated, From: t.Version, To: latest, Err: err, Duration: time.Since(start)}
			if err != nil {
				r.Outcome, r.To = Failed, t.Version
			}
			return r
		}
		if !t.Exists {
			return TargetResult{Target: t, Outcome: Failed, From: -1, To: -1,
				Err: fmt.Errorf("database %s does not exist: restore it, or delete tenant %s", t.Database, t.Identifier)}
		}
		m, err := f.databaseMigrator(t.Database)
		if err != nil {
			return TargetResult{Target: t, Outcome: Failed, From: -1, To: -1, Err: err}
		}
		if _, err := m.UpControl(ctx); err != nil {
			return TargetResult{Target: t, Outcome: Failed, From: t.Version, To: t.Version, Err: err, Duration: time.Since(start)}
		}
		applied, err := m.UpSchema(ctx, "public")
		if err == nil {
			err = f.record(ctx, t.Database, latest)
		}
		r := result(t, applied, err, latest)
		r.Duration = time.Since(start)
		return r
	})...)
}

// DownDatabasesTo reverts the cell's template and tenant databases above
// version. Each database's bookkeeping row goes first, so a failure leaves it
// unknown (checked by the next up), never claiming a version it left.
func (f *Fleet) DownDatabasesTo(ctx context.Context, version int64) ([]TargetResult, error) {
	release, err := lockMigrations(ctx, f.Owner, f.Lock)
	if err != nil {
		return nil, err
	}
	defer release()
	targets, err := f.planDatabases(ctx)
	if err != nil {
		return nil, err
	}
	var above []TargetResult
	var out []TargetResult
	for _, t := range targets {
		if t.Exists && (t.Version < 0 || t.Version > version) {
			above = append(above, TargetResult{Target: t})
			continue
		}
		if t.Exists || t.TenantID != uuid.Nil {
			out = append(out, TargetResult{Target: t, Outcome: Current, From: t.Version, To: t.Version})
		}
	}
	return append(out, f.eachDatabase(ctx, "tenant databases", above, func(ctx context.Context, t Target) TargetResult {
		start := time.Now()
		r := TargetResult{Target: t, Outcome: Current, From: t.Version, To: version}
		if _, err := f.Owner.ExecContext(ctx, `DELETE FROM tenancy.schema_versions WHERE schema_name = $1`, databasePrefix+t.Database); err != nil {
			r.Outcome, r.To, r.Err = Failed, t.Version, err
			return r
		}
		m, err := f.databaseMigrator(t.Database)
		if err != nil {
			r.Outcome, r.To, r.Err = Failed, t.Version, err
			return r
		}
		if t.TenantID == uuid.Nil { // goose refuses to touch a template's connections: lift it first
			_, err = f.Owner.ExecContext(ctx, `ALTER DATABASE `+QuoteIdent(t.Database)+` IS_TEMPLATE false`)
			defer f.Owner.ExecContext(context.WithoutCancel(ctx), `ALTER DATABASE `+QuoteIdent(t.Database)+` IS_TEMPLATE true`)
		}
		var reverted []int64
		if err == nil {
			res, derr := m.DownSchemaTo(ctx, "public", version)
			for _, x := range res {
				reverted = append(reverted, x.Source.Version)
			}
			err = derr
		}
		if err == nil {
			err = f.record(ctx, t.Database, version)
		}
		r.Applied, r.Err, r.Duration = reverted, err, time.Since(start)
		switch {
		case err != nil:
			r.Outcome, r.To = Failed, -1
		case len(reverted) > 0:
			r.Outcome = Migrated
		}
		return r
	})...), nil
}

// StatusDatabases reads each of the cell's databases' own version (one
// connection each: status is read-only and takes no lock).
func (f *Fleet) StatusDatabases(ctx context.Context, latest int64) ([]TargetStatus, error) {
	var hasTenants bool
	if err := f.Owner.QueryRowContext(ctx, `SELECT to_regclass('tenancy.schema_versions') IS NOT NULL AND EXISTS (
		SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('tenancy.tenants') AND attname = 'cell')`).Scan(&hasTenants); err != nil || !hasTenants {
		return nil, err
	}
	targets, err := f.planDatabases(ctx)
	if err != nil {
		return nil, err
	}
	var out []TargetStatus
	for _, t := range targets {
		s := TargetStatus{Target: t, Current: -1, Latest: latest, State: "missing"}
		if !t.Exists {
			if t.TenantID != uuid.Nil {
				out = append(out, s)
			}
			continue
		}
		m, err := f.databaseMigrator(t.Database)
		if err != nil {
			return nil, err
		}
		cfg, err := m.connConfig()
		if err != nil {
			return nil, err
		}
		db := stdlib.OpenDB(*cfg)
		err = db.QueryRowContext(ctx, `SELECT coalesce((SELECT max(version_id) FROM public.`+VersionTable+`), -1)`).Scan(&s.Current)
		db.Close()
		if err != nil {
			return nil, fmt.Errorf("status of database %s: %w", t.Database, err)
		}
		switch {
		case s.Current < latest:
			s.State = "behind"
		case s.Current > latest:
			s.State = "ahead"
		default:
			s.State = "current"
		}
		s.StaleBookkeeping = t.Version != s.Current
		out = append(out, s)
	}
	return out, nil
}

// eachDatabase runs fn over targets with the fleet's bounded concurrency.
func (f *Fleet) eachDatabase(ctx context.Context, phase string, targets []TargetResult, fn func(context.Context, Target) TargetResult) []TargetResult {
	out := make([]TargetResult, len(targets))
	if len(targets) == 0 {
		return out
	}
	f.begin(phase, len(targets))
	sem := make(chan struct{}, f.workers())
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			var r TargetResult
			if ctx.Err() != nil {
				r = skipAll([]Target{t.Target}, "interrupted")[0]
			} else {
				r = fn(ctx, t.Target)
			}
			mu.Lock()
			out[i] = r
			f.done(r)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}
