package tenancy

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strings"

	"github.com/pressly/goose/v3"
)

// IsolationPolicy is the one policy a tenant table carries (docs/contract.md,
// "Database layout"): bound to a tenant, its rows; bound to nothing (NULL or
// ”), none, for reading and writing alike.
const IsolationPolicy = `USING (tenant_id = nullif(current_setting('app.current_tenant', true), '')::uuid)
    WITH CHECK (tenant_id = nullif(current_setting('app.current_tenant', true), '')::uuid)`

// isolationExpr is how PostgreSQL deparses both expressions of IsolationPolicy
// (pg_get_expr); a permissive policy is the isolation policy only if both of
// its expressions read exactly so.
const isolationExpr = `(tenant_id = (NULLIF(current_setting('app.current_tenant'::text, true), ''::text))::uuid)`

// Declarations are what tenant migrations declare about relations the guard
// would otherwise refuse, as comment directives:
//
//	-- tenantkit:shared currencies            one table for every tenant, no tenant_id, read-only to the app role
//	-- tenantkit:shared feature_flags writable  the same, but the app role may write it
//	-- tenantkit:definer tenant_row_count     a SECURITY DEFINER function, reviewed
type Declarations struct {
	Shared  map[string]bool // table -> writable
	Definer map[string]bool // function name
	files   map[int64]string
	created map[string]string // relation or function name -> the migration that creates it
}

var (
	directiveRE = regexp.MustCompile(`^\s*--\s*tenantkit:(\S+)\s*(.*)$`)
	createRE    = regexp.MustCompile(`(?i)\bCREATE\s+(?:OR\s+REPLACE\s+)?(?:UNLOGGED\s+)?(?:TABLE|VIEW|MATERIALIZED\s+VIEW|FUNCTION)\s+(?:IF\s+NOT\s+EXISTS\s+)?"?([A-Za-z_][A-Za-z0-9_]*)`)
)

// ParseDeclarations reads the directives of every migration in fsys (the
// tenant set) and remembers each version's file name for messages.
func ParseDeclarations(fsys fs.FS) (Declarations, error) {
	d := Declarations{Shared: map[string]bool{}, Definer: map[string]bool{}, files: map[int64]string{}, created: map[string]string{}}
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return d, fmt.Errorf("list migrations: %w", err)
	}
	for _, name := range names {
		if v, err := goose.NumericComponent(name); err == nil {
			d.files[v] = name
		}
		f, err := fsys.Open(name)
		if err != nil {
			return d, fmt.Errorf("read migration %s: %w", name, err)
		}
		sc := bufio.NewScanner(f)
		for line := 1; sc.Scan(); line++ {
			if c := createRE.FindStringSubmatch(sc.Text()); c != nil && d.created[strings.ToLower(c[1])] == "" {
				d.created[strings.ToLower(c[1])] = name
			}
			m := directiveRE.FindStringSubmatch(sc.Text())
			if m == nil {
				continue
			}
			args := strings.Fields(m[2])
			switch {
			case m[1] == "shared" && len(args) == 1:
				d.Shared[args[0]] = d.Shared[args[0]] // read-only unless declared writable elsewhere
			case m[1] == "shared" && len(args) == 2 && args[1] == "writable":
				d.Shared[args[0]] = true
			case m[1] == "definer" && len(args) == 1:
				d.Definer[args[0]] = true
			default:
				f.Close()
				return d, fmt.Errorf("migration %s line %d: unknown directive %q: use `-- tenantkit:shared TABLE [writable]` or `-- tenantkit:definer FUNCTION`",
					name, line, strings.TrimSpace(sc.Text()))
			}
		}
		f.Close()
		if err := sc.Err(); err != nil {
			return d, fmt.Errorf("read migration %s: %w", name, err)
		}
	}
	return d, nil
}

// File names the migration of version, for messages.
func (d Declarations) File(version int64) string {
	if f, ok := d.files[version]; ok {
		return f
	}
	return fmt.Sprintf("version %d", version)
}

// Problem is one relation that would let a tenant statement escape isolation.
type Problem struct {
	Schema   string
	Relation string // schema-qualified, or a function signature
	File     string // the migration that creates it, when one does
	Kind     string // table, partition, view, materialized view, foreign table, function
	Why      string
	Fix      string // the SQL (or change) that resolves it
}

func (p Problem) String() string {
	from := ""
	if p.File != "" {
		from = " (created by migration " + p.File + ")"
	}
	return fmt.Sprintf("%s %s%s: %s (fix: %s)", p.Kind, p.Relation, from, p.Why, p.Fix)
}

// IsolationError lists every problem a catalog check or probe found.
type IsolationError struct {
	Where    string // "migration 00003_add_invoices.sql in schema public", "the catalog"
	Problems []Problem
}

func (e *IsolationError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "tenant isolation broken in %s (docs/security.md, invariants 4 and 12): %d problem(s):", e.Where, len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  - ")
		b.WriteString(p.String())
	}
	return b.String()
}

// queryer is what the guard needs of a connection or transaction.
type queryer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// GuardSchema guards, idempotently, every table of schema that has a
// tenant_id column and lacks a part of its guard: it enables and forces row
// level security and, on a table with no policy at all, creates the
// isolation policy. It grants the app role DML on tenant tables and
// security_invoker views, SELECT on declared shared tables (DML when
// writable) and nothing on the rest. It returns the tables it changed. A
// table that has policies of its own is left to CheckSchemas: replacing a
// policy someone wrote is not the guard's call.
func GuardSchema(ctx context.Context, q queryer, schema, appRole string, d Declarations) (guarded []string, err error) {
	rows, err := q.QueryContext(ctx, `SELECT c.relname, c.relkind::text,
			EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped),
			c.relrowsecurity, c.relforcerowsecurity,
			EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid),
			`+securityInvokerSQL+`,
			to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL
		  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		 WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v') AND c.relname <> '`+VersionTable+`'
		   AND NOT `+extensionMemberSQL+`
		 ORDER BY c.relname`, schema)
	if err != nil {
		return nil, fmt.Errorf("guard schema %s: read catalog: %w", schema, err)
	}
	var b strings.Builder
	role := QuoteIdent(appRole)
	var citus bool
	for rows.Next() {
		var (
			name, kind                            string
			tenant, enabled, forced, hasPol, invk bool
		)
		if err := rows.Scan(&name, &kind, &tenant, &enabled, &forced, &hasPol, &invk, &citus); err != nil {
			rows.Close()
			return nil, fmt.Errorf("guard schema %s: %w", schema, err)
		}
		qn := QuoteIdent(schema) + "." + QuoteIdent(name)
		switch {
		case kind == "v":
			if appRole != "" && invk {
				fmt.Fprintf(&b, "GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO %s;\n", qn, role)
			}
		case tenant:
			changed := false
			if !enabled {
				fmt.Fprintf(&b, "ALTER TABLE %s ENABLE ROW LEVEL SECURITY;\n", qn)
				changed = true
			}
			if !forced {
				fmt.Fprintf(&b, "ALTER TABLE %s FORCE ROW LEVEL SECURITY;\n", qn)
				changed = true
			}
			if !hasPol {
				fmt.Fprintf(&b, "CREATE POLICY tenant_isolation ON %s\n    %s;\n", qn, IsolationPolicy)
				changed = true
			}
			if changed {
				guarded = append(guarded, schema+"."+name)
			}
			if appRole != "" {
				fmt.Fprintf(&b, "GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO %s;\n", qn, role)
			}
		default:
			writable, shared := d.Shared[name]
			if appRole == "" || !shared {
				continue // undeclared: CheckSchemas refuses it; no grant meanwhile
			}
			fmt.Fprintf(&b, "GRANT SELECT ON %s TO %s;\n", qn, role)
			if writable {
				fmt.Fprintf(&b, "GRANT INSERT, UPDATE, DELETE ON %s TO %s;\n", qn, role)
			} else {
				fmt.Fprintf(&b, "REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON %s FROM %s;\n", qn, role)
			}
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("guard schema %s: %w", schema, err)
	}
	if b.Len() == 0 {
		return nil, nil
	}
	stmts := []string{b.String()} // one round trip
	if citus {
		// Citus forwards a DDL command's whole query string to the
		// workers, which refuse several commands in one: one at a time.
		stmts = strings.SplitAfter(strings.TrimSuffix(b.String(), "\n"), ";\n")
	}
	for _, st := range stmts {
		if _, err := q.ExecContext(ctx, st); err != nil {
			return nil, fmt.Errorf("guard schema %s: %w", schema, err)
		}
	}
	return guarded, nil
}

// securityInvokerSQL is true for a view created WITH (security_invoker): it
// then reads its tables with the rights (and policies) of its caller, not of
// its owner, the migrate role that bypasses every policy.
const securityInvokerSQL = `coalesce(EXISTS (SELECT 1 FROM unnest(c.reloptions) o
	WHERE lower(o) IN ('security_invoker=true', 'security_invoker=on', 'security_invoker=1', 'security_invoker=yes')), false)`

// extensionMemberSQL leaves out what an extension created (PostGIS puts
// spatial_ref_sys in public): the forker did not write it.
const extensionMemberSQL = `EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')`

// lockedByOthersSQL lists relations another transaction holds an ACCESS
// EXCLUSIVE lock on (a migration running, say). pg_get_expr has to lock the
// relation it deparses for, so their policy expressions are not compared
// (nor probed): that transaction's own guard checks them before it commits,
// and the next check after it does. Everything else about them is still
// checked from the catalog, which needs no lock.
const lockedByOthersSQL = `SELECT l.relation FROM pg_locks l
	WHERE l.locktype = 'relation' AND l.mode = 'AccessExclusiveLock' AND l.granted AND l.pid <> pg_backend_pid()
	  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`

// CheckSchemas checks the catalog of schemas (public and tenant schemas) for
// every way a tenant statement could reach rows without the isolation policy:
//   - a table or partition with tenant_id without row level security enabled
//     and forced, or whose permissive policies are not exactly the isolation
//     policy (restrictive policies only narrow and are allowed);
//   - a table without tenant_id that no migration declared shared, and a
//     read-only shared table the app role may write;
//   - a view without security_invoker (it reads as its owner, bypassing RLS);
//   - any materialized view (a snapshot of every tenant's rows, no RLS);
//   - a foreign table not declared shared (RLS does not apply to them);
//   - a SECURITY DEFINER function not declared with tenantkit:definer.
//
// appRole is the role whose write rights are checked on shared tables
// ("" skips that). Problems are sorted by relation.
func CheckSchemas(ctx context.Context, q queryer, schemas []string, appRole string, d Declarations) ([]Problem, error) {
	rows, err := q.QueryContext(ctx, `WITH locked AS MATERIALIZED (`+lockedByOthersSQL+`)
		SELECT n.nspname, c.relname, c.relkind::text, c.relispartition,
			EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped),
			c.relrowsecurity, c.relforcerowsecurity, `+securityInvokerSQL+`,
			coalesce((SELECT string_agg(p.polname, ', ' ORDER BY p.polname) FROM pg_policy p
			   WHERE p.polrelid = c.oid AND p.polpermissive), ''),
			CASE WHEN c.oid IN (SELECT relation FROM locked) THEN '' ELSE
			coalesce((SELECT string_agg(p.polname, ', ' ORDER BY p.polname) FROM pg_policy p
			   WHERE p.polrelid = c.oid AND p.polpermissive AND NOT (p.polcmd = '*' AND p.polroles = '{0}'
			     AND pg_get_expr(p.polqual, p.polrelid) IS NOT DISTINCT FROM $2
			     AND pg_get_expr(p.polwithcheck, p.polrelid) IS NOT DISTINCT FROM $2)), '') END,
			CASE WHEN NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $3) THEN false ELSE has_table_privilege($3, c.oid, 'INSERT') OR has_table_privilege($3, c.oid, 'UPDATE')
			     OR has_table_privilege($3, c.oid, 'DELETE') END
		  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		 WHERE n.nspname = ANY($1) AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND c.relname <> '`+VersionTable+`'
		   AND NOT `+extensionMemberSQL+`
		UNION ALL
		SELECT n.nspname, p.oid::regprocedure::text, 'F', false, false, false, false, false, p.proname, '', false
		  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
		 WHERE n.nspname = ANY($1) AND p.prosecdef
		   AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
		 ORDER BY 1, 2`, schemas, isolationExpr, appRole)
	if err != nil {
		return nil, fmt.Errorf("check catalog: %w", err)
	}
	defer rows.Close()
	var out []Problem
	for rows.Next() {
		var (
			schema, name, kind, permissive, foreign string
			partition, tenant, enabled, forced      bool
			invoker, writes                         bool
		)
		if err := rows.Scan(&schema, &name, &kind, &partition, &tenant, &enabled, &forced, &invoker,
			&permissive, &foreign, &writes); err != nil {
			return nil, fmt.Errorf("check catalog: %w", err)
		}
		out = append(out, relationProblems(schema, name, kind, partition, tenant, enabled, forced, invoker,
			permissive, foreign, writes, appRole, d)...)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("check catalog: %w", err)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Relation < out[j].Relation })
	return out, nil
}

func relationProblems(schema, name, kind string, partition, tenant, enabled, forced, invoker bool,
	permissive, foreign string, writes bool, appRole string, d Declarations) []Problem {
	qn := QuoteIdent(schema) + "." + QuoteIdent(name)
	p := Problem{Schema: schema, Relation: schema + "." + name, File: d.created[name]}
	switch kind {
	case "F":
		p.File = d.created[permissive]
		if d.Definer[permissive] { // proname travels in the policy column
			return nil
		}
		p.Relation, p.Kind = name, "function"
		p.Why = "SECURITY DEFINER runs as its owner (the migrate role), which row level security does not restrict"
		p.Fix = fmt.Sprintf("ALTER FUNCTION %s SECURITY INVOKER; or, after review, declare it with `-- tenantkit:definer %s`", name, permissive)
		return []Problem{p}
	case "m":
		p.Kind = "materialized view"
		p.Why = "a materialized view holds every tenant's rows and row level security cannot guard it"
		p.Fix = fmt.Sprintf("DROP MATERIALIZED VIEW %s; use a view WITH (security_invoker = true) or a tenant table with tenant_id", qn)
		return []Problem{p}
	case "v":
		if invoker {
			return nil
		}
		p.Kind = "view"
		p.Why = "a view without security_invoker reads its tables as its owner, bypassing every tenant's policy"
		p.Fix = fmt.Sprintf("ALTER VIEW %s SET (security_invoker = true);", qn)
		return []Problem{p}
	case "f":
		if _, ok := d.Shared[name]; ok {
			return nil
		}
		p.Kind = "foreign table"
		p.Why = "row level security does not apply to foreign tables"
		p.Fix = fmt.Sprintf("move it out of the tenant schemas, or declare it `-- tenantkit:shared %s` if it holds no tenant's data", name)
		return []Problem{p}
	}
	p.Kind = "table"
	if partition {
		p.Kind = "partition"
	}
	if !tenant {
		writable, shared := d.Shared[name]
		switch {
		case !shared:
			p.Why = "it has no tenant_id column and no migration declares it shared"
			p.Fix = fmt.Sprintf("add `tenant_id uuid NOT NULL` (the guard then adds row level security), or declare reference data with `-- tenantkit:shared %s` (read-only to the app role; add `writable` to let it write)", name)
		case !writable && writes:
			p.Why = "it is declared shared read-only, yet the app role may write it"
			p.Fix = fmt.Sprintf("REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON %s FROM %s; or declare it `-- tenantkit:shared %s writable`", qn, QuoteIdent(appRole), name)
		default:
			return nil
		}
		return []Problem{p}
	}
	var why, fix []string
	if !enabled {
		why = append(why, "row level security not enabled")
		fix = append(fix, fmt.Sprintf("ALTER TABLE %s ENABLE ROW LEVEL SECURITY;", qn))
	}
	if !forced {
		why = append(why, "row level security not forced (its owner reads every tenant's rows)")
		fix = append(fix, fmt.Sprintf("ALTER TABLE %s FORCE ROW LEVEL SECURITY;", qn))
	}
	switch {
	case permissive == "":
		why = append(why, "no isolation policy")
		fix = append(fix, fmt.Sprintf("CREATE POLICY tenant_isolation ON %s %s;", qn, IsolationPolicy))
	case foreign != "":
		why = append(why, "permissive policies other than the isolation policy (they are OR-ed with it): "+foreign)
		var drops []string
		for _, pol := range strings.Split(foreign, ", ") {
			drops = append(drops, fmt.Sprintf("DROP POLICY %s ON %s;", QuoteIdent(pol), qn))
		}
		fix = append(fix, strings.Join(drops, " "))
		if foreign == permissive {
			fix = append(fix, fmt.Sprintf("CREATE POLICY tenant_isolation ON %s %s;", qn, IsolationPolicy))
		}
	}
	if len(why) == 0 {
		return nil
	}
	p.Why, p.Fix = strings.Join(why, "; "), strings.Join(fix, " ")
	return []Problem{p}
}
