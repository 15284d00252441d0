package tenancy

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/uuid"
)

// plan lists public and every premium schema (or only tenant id's) with its
// bookkept version, in ONE query: no connection per tenant, so deciding that
// 1,000 schemas are current costs one round trip. Tenants still being
// provisioned are left out; provisioning migrates them itself.
func (f *Fleet) plan(ctx context.Context, id uuid.UUID) ([]Target, error) {
	var only any
	if id != uuid.Nil {
		only = id
	}
	var bookkept, placed bool
	if err := f.Owner.QueryRowContext(ctx, `SELECT to_regclass('tenancy.schema_versions') IS NOT NULL,
		EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('tenancy.tenants') AND attname = 'cell' AND NOT attisdropped)`).Scan(&bookkept, &placed); err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	// The control plane's registry lists the tenants of every cell: take
	// this cell's (a control plane older than cells has only this one).
	onCell := ``
	if placed {
		onCell = ` AND cell = ` + quoteLiteral(f.cellName())
	}
	version := `coalesce(v.version, -1)`
	join := `LEFT JOIN tenancy.schema_versions v USING (schema_name)`
	if !bookkept { // a control plane older than the bookkeeping: status still answers
		version, join = `-1::bigint`, ``
	}
	// 'tenant_' || replace(...) mirrors SchemaName; rows are checked against it below.
	rows, err := f.Owner.QueryContext(ctx, `WITH targets AS (
			SELECT 0 AS ord, NULL::uuid AS tenant_id, ''::text AS identifier, 'public'::text AS schema_name
			 WHERE $1::uuid IS NULL
			UNION ALL
			SELECT 1, id, identifier, 'tenant_' || replace(identifier, '-', '_')
			  FROM tenancy.tenants
			 WHERE isolation = 'schema' AND status <> 'provisioning' AND ($1::uuid IS NULL OR id = $1::uuid)`+onCell+`)
		SELECT t.tenant_id, t.identifier, t.schema_name, `+version+`,
		       EXISTS (SELECT 1 FROM pg_namespace n WHERE n.nspname = t.schema_name),
		       to_regclass(quote_ident(t.schema_name) || '.`+VersionTable+`') IS NOT NULL
		  FROM targets t `+join+`
		 ORDER BY t.ord, t.schema_name`, only)
	if err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	defer rows.Close()
	var out []Target
	for rows.Next() {
		var (
			t   Target
			tid uuid.NullUUID
		)
		if err := rows.Scan(&tid, &t.Identifier, &t.Schema, &t.Version, &t.Exists, &t.versioned); err != nil {
			return nil, fmt.Errorf("plan: %w", err)
		}
		t.Kind, t.TenantID, t.Cell = KindShared, tid.UUID, f.cellName()
		if tid.Valid {
			t.Kind = KindTenant
			if !ValidIdentifier(t.Identifier) || SchemaName(t.Identifier) != t.Schema {
				return nil, fmt.Errorf("plan: tenant %s has invalid identifier %q", tid.UUID, t.Identifier)
			}
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	if id == uuid.Nil && (len(out) == 0 || out[0].Schema != "public") {
		return nil, fmt.Errorf("plan: public missing from the plan")
	}
	return out, nil
}

func (f *Fleet) cellName() string {
	if f.Cell == "" {
		return DefaultCell
	}
	return f.Cell
}

// pruneBookkeeping forgets schemas that no longer exist (deleted tenants), so
// a tenant re-created under the same identifier starts from its real version.
func (f *Fleet) pruneBookkeeping(ctx context.Context) error {
	_, err := f.Owner.ExecContext(ctx, `DELETE FROM tenancy.schema_versions v
		WHERE CASE WHEN v.schema_name LIKE '`+databasePrefix+`%'
			THEN NOT EXISTS (SELECT 1 FROM pg_database d WHERE '`+databasePrefix+`' || d.datname = v.schema_name)
			ELSE NOT EXISTS (SELECT 1 FROM pg_namespace n WHERE n.nspname = v.schema_name) END`)
	if err != nil {
		return fmt.Errorf("prune schema_versions: %w", err)
	}
	return nil
}

// TargetStatus is one target as `migrate status` shows it.
type TargetStatus struct {
	Target
	Current int64  // from the schema's own version table; -1 when it has none
	Latest  int64  // of the migration set that applies to it
	State   string // current, behind, ahead, missing
	// StaleBookkeeping: tenancy.schema_versions disagrees with the schema's
	// own table; `migrate up --all` repairs it.
	StaleBookkeeping bool
}

// StatusReport is every target's status.
type StatusReport struct {
	LatestControl int64
	LatestTenant  int64
	Targets       []TargetStatus
	// Unguarded lists every relation the catalog check refuses (invariant
	// 12); `status --check` fails on it as on drift.
	Unguarded []Problem
}

// Drift lists the targets that are not current, or whose bookkeeping is
// stale. Schemas at different versions break pgx's cached statements.
func (s *StatusReport) Drift() []TargetStatus {
	var out []TargetStatus
	for _, t := range s.Targets {
		if t.State != "current" || t.StaleBookkeeping {
			out = append(out, t)
		}
	}
	return out
}

// Status reads every target's version from its own goose table, batched into
// a few UNION ALL queries (read-only, takes no migration lock).
func (f *Fleet) Status(ctx context.Context) (*StatusReport, error) {
	lt, err := f.Migrator.LatestTenantVersion()
	if err != nil {
		return nil, err
	}
	lc, err := f.Migrator.LatestControlVersion()
	if err != nil {
		return nil, err
	}
	rep := &StatusReport{LatestControl: lc, LatestTenant: lt}
	ctrl := Target{Schema: ControlSchema, Kind: KindControl, Version: -1}
	var hasTenants bool
	err = f.Owner.QueryRowContext(ctx, `SELECT
		EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'tenancy'),
		to_regclass('tenancy.`+VersionTable+`') IS NOT NULL,
		to_regclass('tenancy.tenants') IS NOT NULL`).Scan(&ctrl.Exists, &ctrl.versioned, &hasTenants)
	if err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	targets := []Target{ctrl}
	if hasTenants {
		planned, err := f.plan(ctx, uuid.Nil)
		if err != nil {
			return nil, err
		}
		targets = append(targets, planned...)
	}
	versions, err := f.actualVersions(ctx, targets)
	if err != nil {
		return nil, err
	}
	for _, t := range targets {
		s := TargetStatus{Target: t, Current: -1, Latest: lt}
		if t.Kind == KindControl {
			s.Latest = lc
		}
		if v, ok := versions[t.Schema]; ok {
			s.Current = v
		}
		switch {
		case !t.Exists:
			s.State = "missing"
		case s.Current < s.Latest:
			s.State = "behind"
		case s.Current > s.Latest:
			s.State = "ahead"
		default:
			s.State = "current"
		}
		s.StaleBookkeeping = t.Kind != KindControl && t.Exists && t.Version != s.Current
		rep.Targets = append(rep.Targets, s)
	}
	c, err := f.IsolationCheck()
	if err != nil {
		return nil, err
	}
	if rep.Unguarded, err = c.Run(ctx); err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	return rep, nil
}

// actualVersions reads max(version_id) of every versioned target's table.
func (f *Fleet) actualVersions(ctx context.Context, targets []Target) (map[string]int64, error) {
	var schemas []string
	for _, t := range targets {
		if t.versioned {
			schemas = append(schemas, t.Schema)
		}
	}
	out := make(map[string]int64, len(schemas))
	const batch = 200 // bounds the locks one statement takes
	for len(schemas) > 0 {
		n := min(batch, len(schemas))
		var q strings.Builder
		args := make([]any, n)
		for i, s := range schemas[:n] {
			if i > 0 {
				q.WriteString(" UNION ALL ")
			}
			fmt.Fprintf(&q, `SELECT $%d::text, coalesce((SELECT max(version_id) FROM %s.%s), -1)`, i+1, QuoteIdent(s), VersionTable)
			args[i] = s
		}
		rows, err := f.Owner.QueryContext(ctx, q.String(), args...)
		if err != nil {
			return nil, fmt.Errorf("status: read versions: %w", err)
		}
		for rows.Next() {
			var (
				s string
				v int64
			)
			if err := rows.Scan(&s, &v); err != nil {
				rows.Close()
				return nil, fmt.Errorf("status: read versions: %w", err)
			}
			out[s] = v
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("status: read versions: %w", err)
		}
		schemas = schemas[n:]
	}
	return out, nil
}
