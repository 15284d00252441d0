package tenancy

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// Citus (docs/scaling.md, Citus). On a database with the citus extension:
//   - the control plane (schema tenancy) stays a plain local schema on the
//     coordinator, even with citus.enable_schema_based_sharding on: migrate
//     creates it with sharding off for that transaction (noShardingSQL);
//   - public's tenant tables are distributed by tenant_id, all co-located, so
//     a standard tenant's rows of every table sit on one node;
//   - tables declared shared (-- tenantkit:shared) become reference tables;
//   - each premium schema becomes a distributed schema, placed whole on one
//     node (citus_schema_distribute): it is created local, migrated, then
//     distributed, at provisioning and by migrate up for older ones.
//
// A distributed table cannot reference a local one, so the
// <table>_tenant_fk foreign keys to tenancy.tenants (00003) are dropped when a
// table or schema is distributed: deleting a tenant then removes its rows
// through Provisioner.Destroy alone (its schema, or its rows of every shared
// table), not also by cascade.

// noShardingSQL keeps the schema a statement creates local on Citus; on plain
// PostgreSQL it only sets an unused placeholder for the transaction.
const noShardingSQL = `SET LOCAL citus.enable_schema_based_sharding = off`

// createLocalSchema creates schema (if missing) as a plain schema, never a
// distributed one.
func createLocalSchema(ctx context.Context, db *sql.DB, schema string, ifNotExists bool) error {
	ine := ""
	if ifNotExists {
		ine = "IF NOT EXISTS "
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	if _, err := tx.ExecContext(ctx, noShardingSQL); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `CREATE SCHEMA `+ine+QuoteIdent(schema)); err != nil {
		return err
	}
	return tx.Commit()
}

// CitusVersion is the citus extension's version in the database, "" without it.
func CitusVersion(ctx context.Context, q queryer) (string, error) {
	rows, err := q.QueryContext(ctx, `SELECT extversion FROM pg_extension WHERE extname = 'citus'`)
	if err != nil {
		return "", fmt.Errorf("detect citus: %w", err)
	}
	defer rows.Close()
	var v string
	if rows.Next() {
		if err := rows.Scan(&v); err != nil {
			return "", fmt.Errorf("detect citus: %w", err)
		}
	}
	return v, rows.Err()
}

// dropForeignKeysToControlPlane drops, in schema (and only of table when
// given), the foreign keys that reference tables of the control plane.
func dropForeignKeysToControlPlane(ctx context.Context, q queryer, schema, table string) error {
	rows, err := q.QueryContext(ctx, `SELECT format('ALTER TABLE %I.%I DROP CONSTRAINT %I', n.nspname, c.relname, con.conname)
		  FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		  JOIN pg_class r ON r.oid = con.confrelid JOIN pg_namespace rn ON rn.oid = r.relnamespace
		 WHERE con.contype = 'f' AND n.nspname = $1 AND ($2 = '' OR c.relname = $2) AND rn.nspname = $3`, schema, table, ControlSchema)
	if err != nil {
		return fmt.Errorf("list foreign keys of %s to %s: %w", schema, ControlSchema, err)
	}
	var stmts []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			rows.Close()
			return err
		}
		stmts = append(stmts, s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if len(stmts) == 0 {
		return nil
	}
	if _, err := q.ExecContext(ctx, strings.Join(stmts, ";\n")); err != nil {
		return fmt.Errorf("drop foreign keys to %s in %s: %w", ControlSchema, schema, err)
	}
	return nil
}

// DistributeSchema makes the premium schema a distributed schema when the
// database runs Citus (a no-op otherwise, and for one already distributed).
// Provisioning calls it after migrating the new schema.
func DistributeSchema(ctx context.Context, db *sql.DB, schema string) error {
	v, err := CitusVersion(ctx, db)
	if err != nil || v == "" {
		return err
	}
	return distributeSchema(ctx, db, schema)
}

func distributeSchema(ctx context.Context, db *sql.DB, schema string) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("distribute schema %s: %w", schema, err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	var done bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_dist_schema WHERE schemaid = to_regnamespace($1))`, schema).Scan(&done); err != nil {
		return fmt.Errorf("distribute schema %s: %w", schema, err)
	}
	if done {
		return nil
	}
	if err := dropForeignKeysToControlPlane(ctx, tx, schema, ""); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `SELECT citus_schema_distribute($1)`, schema); err != nil {
		return fmt.Errorf("distribute schema %s: %w", schema, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("distribute schema %s: %w", schema, err)
	}
	return nil
}

// SyncCitus brings a Citus database's layout in line with the kit's, and
// returns what it changed (nothing on plain PostgreSQL, after one query). It
// is idempotent, and with nothing to do it costs two queries whatever the
// number of tenants: `migrate up` runs it after migrating every schema.
func (m *Migrator) SyncCitus(ctx context.Context, db *sql.DB) ([]string, error) {
	v, err := CitusVersion(ctx, db)
	if err != nil || v == "" {
		return nil, err
	}
	decl, err := ParseDeclarations(m.Tenant)
	if err != nil {
		return nil, fmt.Errorf("tenant migrations: %w", err)
	}
	var shared []string
	for name := range decl.Shared {
		shared = append(shared, name)
	}
	// kind: c = control plane distributed (refused), t = tenant table of
	// public to distribute, r = shared table to replicate, s = premium schema.
	rows, err := db.QueryContext(ctx, `
		SELECT 'c', n.nspname FROM pg_namespace n JOIN pg_dist_schema d ON d.schemaid = n.oid WHERE n.nspname = $1
		UNION ALL
		SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)
		            THEN 't' ELSE 'r' END, c.relname
		  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
		   AND NOT EXISTS (SELECT 1 FROM pg_dist_partition p WHERE p.logicalrelid = c.oid)
		   AND NOT `+extensionMemberSQL+`
		   AND (EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)
		        OR c.relname = ANY($2))
		UNION ALL
		SELECT 's', n.nspname FROM pg_namespace n
		 WHERE n.nspname LIKE 'tenant\_%' AND NOT EXISTS (SELECT 1 FROM pg_dist_schema d WHERE d.schemaid = n.oid)
		   AND EXISTS (SELECT 1 FROM pg_class c WHERE c.relnamespace = n.oid AND c.relname = '`+VersionTable+`')
		 ORDER BY 1, 2`, ControlSchema, shared)
	if err != nil {
		return nil, fmt.Errorf("citus: list what to distribute: %w", err)
	}
	var tables, refs, schemas []string
	for rows.Next() {
		var kind, name string
		if err := rows.Scan(&kind, &name); err != nil {
			rows.Close()
			return nil, fmt.Errorf("citus: %w", err)
		}
		switch kind {
		case "c":
			rows.Close()
			return nil, fmt.Errorf("citus: the control plane schema %s is a distributed schema (it was created while citus.enable_schema_based_sharding was on): it must stay local on the coordinator; fix: SELECT citus_schema_undistribute('%s'); then migrate up", name, name)
		case "t":
			tables = append(tables, name)
		case "r":
			refs = append(refs, name)
		case "s":
			schemas = append(schemas, name)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("citus: %w", err)
	}
	var changed []string
	// Reference tables first: a tenant table may reference one.
	for _, t := range refs {
		if _, err := db.ExecContext(ctx, `SELECT create_reference_table($1)`, "public."+QuoteIdent(t)); err != nil {
			return changed, fmt.Errorf("citus: make public.%s a reference table: %w", t, err)
		}
		changed = append(changed, "public."+t+": reference table")
	}
	if err := m.distributeTenantTables(ctx, db, tables, &changed); err != nil {
		return changed, err
	}
	for _, s := range schemas {
		if err := distributeSchema(ctx, db, s); err != nil {
			return changed, fmt.Errorf("citus: %w", err)
		}
		changed = append(changed, s+": distributed schema")
	}
	return changed, nil
}

// distributeTenantTables distributes public's tenant tables by tenant_id,
// co-located with the ones already distributed, a referenced table before
// the tables that reference it.
func (m *Migrator) distributeTenantTables(ctx context.Context, db *sql.DB, tables []string, changed *[]string) error {
	var anchor string
	if err := db.QueryRowContext(ctx, `SELECT coalesce((SELECT p.logicalrelid::regclass::text FROM pg_dist_partition p
		JOIN pg_class c ON c.oid = p.logicalrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'public' AND p.partmethod = 'h' ORDER BY c.relname LIMIT 1), '')`).Scan(&anchor); err != nil {
		return fmt.Errorf("citus: %w", err)
	}
	pending := append([]string(nil), tables...)
	for len(pending) > 0 {
		var next []string
		for _, t := range pending {
			var waits bool // references a tenant table of public not distributed yet
			if err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_constraint con
				 WHERE con.conrelid = $1::regclass AND con.contype = 'f' AND con.confrelid <> con.conrelid
				   AND con.confrelid::regclass::text = ANY($2))`, "public."+QuoteIdent(t), qualifyAll(pending, t)).Scan(&waits); err != nil {
				return fmt.Errorf("citus: %w", err)
			}
			if waits {
				next = append(next, t)
				continue
			}
			if err := distributeTable(ctx, db, t, anchor); err != nil {
				return err
			}
			if anchor == "" {
				anchor = "public." + QuoteIdent(t)
			}
			*changed = append(*changed, "public."+t+": distributed by tenant_id")
		}
		if len(next) == len(pending) {
			return fmt.Errorf("citus: cannot order the distribution of %s: their foreign keys form a cycle", strings.Join(next, ", "))
		}
		pending = next
	}
	return nil
}

func qualifyAll(tables []string, except string) []string {
	var out []string
	for _, t := range tables {
		if t != except {
			out = append(out, t, "public."+QuoteIdent(t))
		}
	}
	return out
}

func distributeTable(ctx context.Context, db *sql.DB, table, anchor string) error {
	qn := "public." + QuoteIdent(table)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("citus: distribute %s: %w", qn, err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	if err := dropForeignKeysToControlPlane(ctx, tx, "public", table); err != nil {
		return fmt.Errorf("citus: %w", err)
	}
	colocate := anchor
	if colocate == "" {
		colocate = "default"
	}
	if _, err := tx.ExecContext(ctx, `SELECT create_distributed_table($1, 'tenant_id', colocate_with => $2)`, qn, colocate); err != nil {
		return fmt.Errorf("citus: distribute %s by tenant_id: %w", qn, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("citus: distribute %s: %w", qn, err)
	}
	return nil
}

// TenantNode is where a tenant's data lives on a Citus cluster.
type TenantNode struct {
	TenantID   string
	Identifier string
	Isolation  Isolation
	Node       string // host:port of the worker (or coordinator) holding it
}

// TenantPlacement lists the node of every tenant: its distributed schema's
// node, or the node of its shard of public's co-located tables. Nil on plain
// PostgreSQL (after one query). `migrate status` prints it.
func TenantPlacement(ctx context.Context, db *sql.DB) ([]TenantNode, error) {
	v, err := CitusVersion(ctx, db)
	if err != nil || v == "" {
		return nil, err
	}
	var anchor string
	if err := db.QueryRowContext(ctx, `SELECT coalesce((SELECT p.logicalrelid::regclass::text FROM pg_dist_partition p
		JOIN pg_class c ON c.oid = p.logicalrelid WHERE c.relnamespace = 'public'::regnamespace AND p.partmethod = 'h'
		ORDER BY c.relname LIMIT 1), '')`).Scan(&anchor); err != nil {
		return nil, fmt.Errorf("tenant placement: %w", err)
	}
	rows, err := db.QueryContext(ctx, `SELECT t.id::text, t.identifier, t.isolation, coalesce(s.node, '')
		  FROM tenancy.tenants t
		  LEFT JOIN LATERAL (
			SELECT nodename || ':' || nodeport AS node FROM citus_shards
			 WHERE shardid = CASE WHEN t.isolation = 'schema'
			   THEN (SELECT min(c.shardid) FROM citus_shards c JOIN citus_schemas cs ON cs.colocation_id = c.colocation_id
			          WHERE cs.schema_name::text = 'tenant_' || replace(t.identifier, '-', '_'))
			   WHEN $1 <> '' THEN get_shard_id_for_distribution_column($1, t.id) END
			 LIMIT 1) s ON true
		 ORDER BY 4, 2`, anchor)
	if err != nil {
		return nil, fmt.Errorf("tenant placement: %w", err)
	}
	defer rows.Close()
	var out []TenantNode
	for rows.Next() {
		var n TenantNode
		if err := rows.Scan(&n.TenantID, &n.Identifier, &n.Isolation, &n.Node); err != nil {
			return nil, fmt.Errorf("tenant placement: %w", err)
		}
		out = append(out, n)
	}
	return out, rows.Err()
}
