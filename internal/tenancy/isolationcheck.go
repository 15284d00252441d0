package tenancy

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// IsolationCheck is the catalog check that `migrate up`, `migrate status
// --check`, api and worker start-up and the test suite share (invariant 12).
type IsolationCheck struct {
	// DSN opens a connection of its own: a new backend, on which
	// app.current_tenant has never been set (NULL), so the probe covers a
	// never-bound connection as well as ''.
	DSN string
	// AppRole is the role the probe acts as and whose write rights on shared
	// tables are checked; "" means the DSN's own role (api and worker).
	AppRole      string
	Declarations Declarations
}

// Run checks public and every tenant schema (CheckSchemas) and, when the
// catalog is clean and the role may create temporary tables, probes what the policies of public's tenant tables allow
// (ProbeIsolation; premium schemas were probed by the migration that built
// them, in its transaction). It works in one transaction that it rolls back:
// it changes nothing, so it is safe at start-up on a production database.
func (c IsolationCheck) Run(ctx context.Context) ([]Problem, error) {
	cfg, err := pgx.ParseConfig(c.DSN)
	if err != nil {
		return nil, fmt.Errorf("isolation check: parse database url: %w", err)
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(1)
	defer db.Close()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("isolation check: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only work, always rolled back
	// It reads only the catalog; should anything wait on a lock, fail
	// rather than hang a start-up.
	if _, err := tx.ExecContext(ctx, `SET LOCAL lock_timeout = '10s'`); err != nil {
		return nil, fmt.Errorf("isolation check: %w", err)
	}
	var role, list string
	var mayProbe bool
	// Tenant schemas are plain identifiers (SchemaName): no commas.
	err = tx.QueryRowContext(ctx, `SELECT current_user, array_to_string(ARRAY(SELECT nspname::text FROM pg_namespace
		WHERE nspname = 'public' OR nspname LIKE 'tenant\_%' ORDER BY 1), ','),
		has_database_privilege(current_database(), 'TEMPORARY')`).Scan(&role, &list, &mayProbe)
	if err != nil {
		return nil, fmt.Errorf("isolation check: list schemas: %w", err)
	}
	schemas := strings.Split(list, ",")
	app := c.AppRole
	if app == "" {
		app = role
	}
	problems, err := CheckSchemas(ctx, tx, schemas, app, c.Declarations)
	if err == nil && len(problems) == 0 {
		problems, err = CheckKeys(ctx, tx, schemas, c.Declarations)
	}
	if err != nil || len(problems) > 0 || !mayProbe {
		// A hardened app role may not create the probe's temporary tables
		// (migrate up revokes TEMPORARY): it gets the structural check,
		// which requires exactly the isolation policy; migrate probed what
		// the policies allow when it migrated each schema.
		return problems, err
	}
	return probeWith(ctx, tx, "public", app, c.Declarations)
}

// CheckIsolation runs c and turns problems into an *IsolationError: api and
// worker refuse to start on it, as they do for an unsafe role.
func CheckIsolation(ctx context.Context, c IsolationCheck) error {
	problems, err := c.Run(ctx)
	if err != nil {
		return err
	}
	if len(problems) > 0 {
		return &IsolationError{Where: "the database (run `migrate status --check`; fix the migration that created each relation, then `migrate up`)", Problems: problems}
	}
	return nil
}
