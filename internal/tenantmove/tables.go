package tenantmove

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/your-org/tenantkit/internal/tenancy"
)

// table is a tenant table: its stored columns and primary key.
type table struct {
	name    string
	columns []string
	pkey    []string
	md5     bool // a column type has no hash function: checksum the text form
}

const sep = "\x1f"

// discover lists the tables of schema with a tenant_id column (every tenant
// table of the tenant migrations, a fork's included), by name.
func discover(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, schema string) ([]table, error) {
	rows, err := q.QueryContext(ctx, `SELECT c.relname,
			string_agg(a.attname, E'\x1f' ORDER BY a.attnum),
			coalesce((SELECT string_agg(pa.attname, E'\x1f' ORDER BY array_position(i.indkey::int2[], pa.attnum))
				FROM pg_index i JOIN pg_attribute pa ON pa.attrelid = i.indrelid AND pa.attnum = ANY (i.indkey)
				WHERE i.indrelid = c.oid AND i.indisprimary), '')
		FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
		WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition
		  AND EXISTS (SELECT 1 FROM pg_attribute t WHERE t.attrelid = c.oid AND t.attname = 'tenant_id' AND NOT t.attisdropped)
		GROUP BY c.oid, c.relname ORDER BY c.relname`, schema)
	if err != nil {
		return nil, fmt.Errorf("discover tables of %s: %w", schema, err)
	}
	defer rows.Close()
	var out []table
	for rows.Next() {
		var name, cols, pk string
		if err := rows.Scan(&name, &cols, &pk); err != nil {
			return nil, fmt.Errorf("discover tables of %s: %w", schema, err)
		}
		t := table{name: name, columns: strings.Split(cols, sep)}
		if pk != "" {
			t.pkey = strings.Split(pk, sep)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

func quoteAll(prefix string, cols []string) string {
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = prefix + tenancy.QuoteIdent(c)
	}
	return strings.Join(q, ", ")
}

func qualified(schema, table string) string {
	return tenancy.QuoteIdent(schema) + "." + tenancy.QuoteIdent(table)
}

// fenceName is the move fence trigger's name for a tenant.
func fenceName(id uuid.UUID) string { return "tk_move_fence_" + hex.EncodeToString(id[:]) }

// copySQL copies the tenant's rows of t from src to dst in one statement.
func copySQL(src, dst string, t table) string {
	return `INSERT INTO ` + qualified(dst, t.name) + ` (` + quoteAll("", t.columns) + `) SELECT ` + quoteAll("", t.columns) +
		` FROM ` + qualified(src, t.name) + ` WHERE tenant_id = $1`
}

// deltaSQL brings dst's rows of the tenant in line with src's (which are
// fenced): remove rows gone from src, upsert rows new or different. Joins go
// by primary key (hashable), so the cost is a scan of both sides.
func deltaSQL(src, dst string, t table) []string {
	if len(t.pkey) == 0 { // no key to match rows by: replace them all
		return []string{`DELETE FROM ` + qualified(dst, t.name) + ` WHERE tenant_id = $1`, copySQL(src, dst, t)}
	}
	on := make([]string, len(t.pkey))
	for i, c := range t.pkey {
		on[i] = "d." + tenancy.QuoteIdent(c) + " = s." + tenancy.QuoteIdent(c)
	}
	join := strings.Join(on, " AND ")
	set := make([]string, 0, len(t.columns))
	for _, c := range t.columns {
		set = append(set, tenancy.QuoteIdent(c)+" = EXCLUDED."+tenancy.QuoteIdent(c))
	}
	return []string{
		`DELETE FROM ` + qualified(dst, t.name) + ` d WHERE d.tenant_id = $1 AND NOT EXISTS (SELECT 1 FROM ` +
			qualified(src, t.name) + ` s WHERE s.tenant_id = $1 AND ` + join + `)`,
		`INSERT INTO ` + qualified(dst, t.name) + ` (` + quoteAll("", t.columns) + `) SELECT ` + quoteAll("s.", t.columns) +
			` FROM ` + qualified(src, t.name) + ` s LEFT JOIN ` + qualified(dst, t.name) + ` d ON d.tenant_id = $1 AND ` + join +
			` WHERE s.tenant_id = $1 AND (d.` + tenancy.QuoteIdent(t.pkey[0]) + ` IS NULL OR ROW(` + quoteAll("d.", t.columns) +
			`) IS DISTINCT FROM ROW(` + quoteAll("s.", t.columns) + `)) ON CONFLICT (` + quoteAll("", t.pkey) +
			`) DO UPDATE SET ` + strings.Join(set, ", "),
	}
}

// checksumSQL returns the tenant's row count in schema.t and an
// order-independent checksum of its rows: the sum of a 64-bit hash of each
// row (hash_record_extended, PostgreSQL 14+; the md5 of its text form for
// types without a hash function), so source and target compare without
// sorting.
func checksumSQL(schema string, t table) string {
	h := `hash_record_extended(ROW(` + quoteAll("", t.columns) + `), 0)`
	if t.md5 {
		h = `('x' || substr(md5(ROW(` + quoteAll("", t.columns) + `)::text), 1, 16))::bit(64)::bigint`
	}
	return `SELECT count(*), coalesce(sum(` + h + `::numeric), 0)::text FROM ` + qualified(schema, t.name) + ` WHERE tenant_id = $1`
}

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}
