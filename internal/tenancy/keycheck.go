package tenancy

import (
	"context"
	"fmt"
	"strings"
)

// CheckKeys refuses, in schemas, a tenant table (one with tenant_id) whose
// primary key, unique constraint or unique index leaves tenant_id out, or
// whose foreign key to another tenant table does not match tenant_id with
// tenant_id. Such a key is one for every tenant at once: a duplicate value in
// another tenant's row is a visible conflict, and a reference may point at
// another tenant's row (key checks bypass row level security). It is also
// what keeps a table from being distributed by tenant_id on Citus
// (docs/scaling.md, Citus). Foreign keys to tables without tenant_id (the
// tenant registry, declared shared tables) are fine.
//
// The migrator runs it after the last migration of a set (migrations in
// between may still be reshaping keys) and IsolationCheck.Run at start-up.
func CheckKeys(ctx context.Context, q queryer, schemas []string, d Declarations) ([]Problem, error) {
	rows, err := q.QueryContext(ctx, `
		SELECT n.nspname, c.relname, x.kind, x.name, x.cols, x.ref, x.refcols
		  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		  JOIN pg_attribute ta ON ta.attrelid = c.oid AND ta.attname = 'tenant_id' AND NOT ta.attisdropped
		 CROSS JOIN LATERAL (
			SELECT CASE WHEN i.indisprimary THEN 'primary key' WHEN con.oid IS NOT NULL THEN 'unique constraint' ELSE 'unique index' END AS kind,
			       coalesce(con.conname, ic.relname)::text AS name,
			       array_to_string(ARRAY(SELECT coalesce(quote_ident(a.attname), pg_get_indexdef(i.indexrelid, u.o::int, true))
			           FROM unnest(i.indkey::int2[]) WITH ORDINALITY u(k, o)
			           LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = u.k
			          WHERE u.o <= i.indnkeyatts ORDER BY u.o), ', ') AS cols,
			       '' AS ref, '' AS refcols
			  FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
			  LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = c.oid AND con.contype IN ('p', 'u')
			 WHERE i.indrelid = c.oid AND i.indisunique
			   AND NOT EXISTS (SELECT 1 FROM unnest(i.indkey::int2[]) WITH ORDINALITY u(k, o) WHERE u.k = ta.attnum AND u.o <= i.indnkeyatts)
			UNION ALL
			SELECT 'foreign key', con.conname::text,
			       array_to_string(ARRAY(SELECT quote_ident(a.attname) FROM unnest(con.conkey) WITH ORDINALITY u(k, o)
			           JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = u.k ORDER BY u.o), ', '),
			       con.confrelid::regclass::text,
			       array_to_string(ARRAY(SELECT quote_ident(a.attname) FROM unnest(con.confkey) WITH ORDINALITY u(k, o)
			           JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = u.k ORDER BY u.o), ', ')
			  FROM pg_constraint con
			  JOIN pg_attribute ra ON ra.attrelid = con.confrelid AND ra.attname = 'tenant_id' AND NOT ra.attisdropped
			 WHERE con.conrelid = c.oid AND con.contype = 'f'
			   AND NOT EXISTS (SELECT 1 FROM generate_subscripts(con.conkey, 1) s
			                    WHERE con.conkey[s] = ta.attnum AND con.confkey[s] = ra.attnum)
		 ) x
		 WHERE n.nspname = ANY($1) AND c.relkind IN ('r', 'p') AND NOT c.relispartition
		   AND NOT `+extensionMemberSQL+`
		 ORDER BY 1, 2, 4`, schemas)
	if err != nil {
		return nil, fmt.Errorf("check tenant keys: %w", err)
	}
	defer rows.Close()
	var out []Problem
	for rows.Next() {
		var schema, table, kind, name, cols, ref, refcols string
		if err := rows.Scan(&schema, &table, &kind, &name, &cols, &ref, &refcols); err != nil {
			return nil, fmt.Errorf("check tenant keys: %w", err)
		}
		out = append(out, keyProblem(schema, table, kind, name, cols, ref, refcols, d))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("check tenant keys: %w", err)
	}
	return out, nil
}

func keyProblem(schema, table, kind, name, cols, ref, refcols string, d Declarations) Problem {
	qn := QuoteIdent(schema) + "." + QuoteIdent(table)
	p := Problem{Schema: schema, Relation: schema + "." + table, File: d.created[table], Kind: "table"}
	qname := QuoteIdent(name)
	idx := QuoteIdent(strings.TrimSuffix(name, "_key") + "_tenant_key")
	swap := fmt.Sprintf("in a `-- +goose NO TRANSACTION` migration (as migrations/tenant/00004_tenant_keys.sql does): CREATE UNIQUE INDEX CONCURRENTLY %s ON %s (tenant_id, %s);", idx, qn, cols)
	switch kind {
	case "primary key":
		p.Why = fmt.Sprintf("its primary key %s (%s) does not include tenant_id: it is one key for every tenant, and Citus cannot distribute the table by tenant", name, cols)
		p.Fix = swap + fmt.Sprintf(" ALTER TABLE %s DROP CONSTRAINT %s, ADD CONSTRAINT %s PRIMARY KEY USING INDEX %s;", qn, qname, qname, idx)
	case "unique constraint":
		p.Why = fmt.Sprintf("its unique constraint %s (%s) does not include tenant_id: a value another tenant holds becomes a visible conflict, and Citus cannot distribute the table by tenant", name, cols)
		p.Fix = swap + fmt.Sprintf(" ALTER TABLE %s DROP CONSTRAINT %s, ADD CONSTRAINT %s UNIQUE USING INDEX %s;", qn, qname, qname, idx)
	case "unique index":
		p.Why = fmt.Sprintf("its unique index %s (%s) does not include tenant_id: a value another tenant holds becomes a visible conflict, and Citus cannot distribute the table by tenant", name, cols)
		p.Fix = swap + fmt.Sprintf(" DROP INDEX CONCURRENTLY %s.%s;", QuoteIdent(schema), qname)
	default: // foreign key
		p.Why = fmt.Sprintf("its foreign key %s (%s) references the tenant table %s (%s) without matching tenant_id to tenant_id: a row may point at another tenant's row, and Citus cannot co-locate the two tables", name, cols, ref, refcols)
		p.Fix = fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT %s, ADD CONSTRAINT %s FOREIGN KEY (tenant_id, %s) REFERENCES %s (tenant_id, %s) NOT VALID; (%s needs a key on (tenant_id, %s))",
			qn, qname, qname, cols, ref, refcols, ref, refcols)
	}
	return p
}
