// Package tenantdata moves a tenant's rows in bulk: export to and import from
// a streaming archive. Tables are discovered from the catalog (every table of
// the tenant's schema with a tenant_id column), never listed by hand, so a
// fork's new tables travel too. Data moves with COPY in Postgres' own text
// format, which round-trips every column type losslessly.
package tenantdata

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/your-org/tenantkit/internal/tenancy"
)

// Table is a tenant table and its stored columns in catalog order.
type Table struct {
	Name    string   `json:"name"`
	Columns []string `json:"columns"`
}

// TenantColumn is the column every tenant table carries.
const TenantColumn = "tenant_id"

// DiscoverTables lists the tables of schema that have a tenant_id column,
// with their columns (generated and dropped ones left out), by name.
func DiscoverTables(ctx context.Context, conn *pgx.Conn, schema string) ([]Table, error) {
	rows, err := conn.Query(ctx, `SELECT c.relname, array_agg(a.attname::text ORDER BY a.attnum)
		FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
		WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition
		  AND EXISTS (SELECT 1 FROM pg_attribute t WHERE t.attrelid = c.oid AND t.attname = 'tenant_id' AND NOT t.attisdropped)
		GROUP BY c.relname ORDER BY c.relname`, schema)
	if err != nil {
		return nil, fmt.Errorf("discover tenant tables of %s: %w", schema, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Table, error) {
		var t Table
		err := r.Scan(&t.Name, &t.Columns)
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("discover tenant tables of %s: %w", schema, err)
	}
	return out, nil
}

func (t Table) tenantIndex() int { return slices.Index(t.Columns, TenantColumn) }

// columnList renders the quoted column list of t.
func (t Table) columnList() string {
	q := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		q[i] = tenancy.QuoteIdent(c)
	}
	return strings.Join(q, ", ")
}

// qualified renders schema.table, quoted.
func qualified(schema, table string) string {
	return tenancy.QuoteIdent(schema) + "." + tenancy.QuoteIdent(table)
}

// withConn runs fn on one pgx connection of db (a pool opened with the pgx
// stdlib driver): COPY needs the native connection.
func withConn(ctx context.Context, db *sql.DB, fn func(*pgx.Conn) error) error {
	c, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("acquire connection: %w", err)
	}
	defer c.Close()
	return c.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("tenantdata needs a pgx stdlib pool, got %T", dc)
		}
		return fn(sc.Conn())
	})
}

// bind sets the tenant for the transaction: forced row-level security
// applies to the owner role too (unless it is a superuser, so every query
// also filters on tenant_id).
func bind(ctx context.Context, tx pgx.Tx, t *tenancy.Tenant) error {
	if _, err := tx.Exec(ctx, `SELECT set_config('app.current_tenant', $1, true)`, t.ID.String()); err != nil {
		return fmt.Errorf("bind tenant %s: %w", t.ID, err)
	}
	return nil
}

// SchemaVersion is the tenant-migration version of schema (goose's table).
func SchemaVersion(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, schema string) (int64, error) {
	var v int64
	if err := q.QueryRow(ctx, `SELECT coalesce(max(version_id), 0) FROM `+qualified(schema, tenancy.VersionTable)).Scan(&v); err != nil {
		return 0, fmt.Errorf("migration version of %s: %w", schema, err)
	}
	return v, nil
}
