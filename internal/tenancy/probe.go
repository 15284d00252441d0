package tenancy

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// probeFailed is the SQLSTATE the probe raises with its findings in DETAIL.
const probeFailed = "TK002"

// ProbeIsolation checks what the policies of every tenant table of schema
// ALLOW, not how they read: the catalog check compares text, and a policy
// can read right and still let rows through (or a future edit can make the
// text check too lenient). For each table with tenant_id it builds, in the
// current transaction, a temporary copy carrying the table's row level
// security flags and every one of its policies (same expressions, commands,
// roles), owned by the app role, with one row of a synthetic tenant A and one
// of B; then, acting as the app role, it checks that
//   - bound to nothing sees no row and may write none, on a never-bound
//     connection (app.current_tenant is NULL, checked only when the
//     connection has never set it) and with ”;
//   - bound to A sees exactly A's row, may not insert B's, move its row to
//     B, update or delete B's.
//
// It never writes to, nor locks, the real tables (safe at start-up on a
// production database; a table another transaction holds an ACCESS
// EXCLUSIVE lock on is left to that transaction's own guard); the copies are dropped before it returns and the caller's
// transaction must be rolled back or committed by the caller. As the app
// role itself, or as a superuser or a member of appRole, it can act as the
// app role; otherwise (a role that bypasses RLS and may not become the app
// role) it checks nothing and returns no problems.
func ProbeIsolation(ctx context.Context, q queryer, schema, appRole string) ([]Problem, error) {
	return probeWith(ctx, q, schema, appRole, Declarations{})
}

func probeWith(ctx context.Context, q queryer, schema, appRole string, d Declarations) ([]Problem, error) {
	_, err := q.ExecContext(ctx, probeSQL(schema, appRole))
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == probeFailed {
		var out []Problem
		for _, line := range strings.Split(pe.Detail, "\n") {
			rel, why, _ := strings.Cut(line, ": ")
			out = append(out, Problem{Schema: schema, Relation: rel, Kind: "table", Why: why,
				File: d.created[strings.TrimPrefix(rel, schema+".")],
				Fix: "give it row level security enabled and forced and, as its only permissive policy, CREATE POLICY tenant_isolation ON " +
					rel + " " + IsolationPolicy + ";"})
		}
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("probe isolation of schema %s: %w", schema, err)
	}
	return nil, nil
}

func probeSQL(schema, appRole string) string {
	return `DO $tkprobe$
DECLARE
	sch text := ` + quoteLiteral(schema) + `;
	app text := ` + quoteLiteral(appRole) + `;
	ta text := gen_random_uuid()::text;
	tb text := gen_random_uuid()::text;
	fresh boolean := current_setting('app.current_tenant', true) IS NULL;
	switched boolean := false;
	r record;
	pol record;
	copies text[] := '{}';
	rels text[] := '{}';
	problems text[] := '{}';
	phase text;
	bound text;
	i int;
	n bigint;
	own bigint;
	k bigint;
	cols text;
	mine int; -- rows a statement may touch: A's one row when bound to A
BEGIN
	IF app <> '' AND app <> current_user AND EXISTS (SELECT 1 FROM pg_roles WHERE rolname = app)
	   AND ((SELECT rolsuper FROM pg_roles WHERE rolname = current_user) OR pg_has_role(current_user, app, 'MEMBER')) THEN
		-- The copies are created first, as this role: the app role has no
		-- TEMPORARY on the database (migrate up revokes it).
		switched := true;
	ELSIF (SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user) THEN
		RAISE NOTICE 'tenantkit: isolation probe skipped: % bypasses row level security and may not act as the app role', current_user;
		RETURN;
	END IF;

	FOR r IN SELECT c.oid, c.relname, c.relrowsecurity, c.relforcerowsecurity
	           FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace
	          WHERE ns.nspname = sch AND c.relkind IN ('r', 'p')
	            AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)
	            AND c.oid NOT IN (` + lockedByOthersSQL + `)
	          ORDER BY c.relname
	LOOP
		i := coalesce(array_length(copies, 1), 0) + 1;
		copies := copies || ('tk_probe_' || i);
		rels := rels || (sch || '.' || r.relname);
		-- Built from the catalog, not from the table: no lock on it, so a
		-- migration holding one never blocks a start-up.
		SELECT string_agg(format('%I %s', a.attname, format_type(a.atttypid, a.atttypmod)), ', ' ORDER BY a.attnum)
		  INTO cols FROM pg_attribute a WHERE a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped;
		EXECUTE format('CREATE TEMP TABLE %I (%s)', copies[i], cols);
		EXECUTE format('INSERT INTO pg_temp.%I (tenant_id) VALUES (%L), (%L)', copies[i], ta, tb);
		IF r.relrowsecurity THEN
			EXECUTE format('ALTER TABLE pg_temp.%I ENABLE ROW LEVEL SECURITY', copies[i]);
		END IF;
		IF r.relforcerowsecurity THEN
			EXECUTE format('ALTER TABLE pg_temp.%I FORCE ROW LEVEL SECURITY', copies[i]);
		END IF;
		FOR pol IN SELECT p.polname, p.polpermissive, p.polcmd,
		                  pg_get_expr(p.polqual, p.polrelid) AS qual, pg_get_expr(p.polwithcheck, p.polrelid) AS chk,
		                  (SELECT string_agg(CASE WHEN x = 0 THEN 'public' ELSE quote_ident(pg_get_userbyid(x)) END, ', ')
		                     FROM unnest(p.polroles) x) AS roles
		             FROM pg_policy p WHERE p.polrelid = r.oid
		LOOP
			EXECUTE format('CREATE POLICY %I ON pg_temp.%I AS %s FOR %s TO %s%s%s', pol.polname, copies[i],
				CASE WHEN pol.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END,
				CASE pol.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE' WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
				pol.roles,
				CASE WHEN pol.qual IS NULL THEN '' ELSE ' USING (' || pol.qual || ')' END,
				CASE WHEN pol.chk IS NULL THEN '' ELSE ' WITH CHECK (' || pol.chk || ')' END);
		END LOOP;
	END LOOP;

	IF switched THEN
		FOR i IN 1 .. coalesce(array_length(copies, 1), 0) LOOP
			BEGIN
				-- Owned by the app role, so a copy without FORCE shows.
				EXECUTE format('ALTER TABLE pg_temp.%I OWNER TO %I', copies[i], app);
			EXCEPTION WHEN insufficient_privilege THEN
				EXECUTE format('GRANT ALL ON TABLE pg_temp.%I TO %I', copies[i], app);
			END;
		END LOOP;
		EXECUTE format('SET LOCAL ROLE %I', app);
	END IF;

	FOREACH phase IN ARRAY CASE WHEN fresh THEN ARRAY['null', 'empty', 'a'] ELSE ARRAY['empty', 'a'] END LOOP
		IF phase = 'empty' THEN
			PERFORM set_config('app.current_tenant', '', true);
		ELSIF phase = 'a' THEN
			PERFORM set_config('app.current_tenant', ta, true);
		END IF;
		mine := CASE WHEN phase = 'a' THEN 1 ELSE 0 END;
		bound := CASE phase WHEN 'null' THEN 'bound to nothing on a never-bound connection (app.current_tenant NULL)'
		                    WHEN 'empty' THEN 'bound to nothing (app.current_tenant '''')'
		                    ELSE 'bound to tenant A' END;
		FOR i IN 1 .. coalesce(array_length(copies, 1), 0) LOOP
			EXECUTE format('SELECT count(*), count(*) FILTER (WHERE tenant_id::text = %L) FROM pg_temp.%I', ta, copies[i]) INTO n, own;
			IF phase = 'a' THEN
				IF n > own THEN
					problems := problems || format('%s: %s, it sees %s row(s) of tenant B', rels[i], bound, n - own);
				END IF;
				IF own <> 1 THEN
					problems := problems || format('%s: %s, it does not see A''s own row', rels[i], bound);
				END IF;
			ELSIF n > 0 THEN
				problems := problems || format('%s: %s, it sees %s of the 2 tenants'' rows', rels[i], bound, n);
			END IF;
			BEGIN
				BEGIN
					EXECUTE format('INSERT INTO pg_temp.%I (tenant_id) VALUES (%L)', copies[i], tb);
					problems := problems || format('%s: %s, it may insert a row of tenant B', rels[i], bound);
				EXCEPTION WHEN insufficient_privilege THEN NULL;
				END;
				-- No WHERE clause: a statement that reads no column is not
				-- filtered by SELECT policies, only by UPDATE/DELETE ones.
				BEGIN
					EXECUTE format('UPDATE pg_temp.%I SET tenant_id = %L', copies[i], ta);
					GET DIAGNOSTICS k = ROW_COUNT;
					IF k > mine THEN
						problems := problems || format('%s: %s, it may update tenant B''s row', rels[i], bound);
					END IF;
				EXCEPTION WHEN insufficient_privilege THEN NULL;
				END;
				IF phase = 'a' THEN
					BEGIN
						EXECUTE format('UPDATE pg_temp.%I SET tenant_id = %L WHERE tenant_id::text = %L', copies[i], tb, ta);
						GET DIAGNOSTICS k = ROW_COUNT;
						IF k > 0 THEN
							problems := problems || format('%s: %s, it may move its row to tenant B', rels[i], bound);
						END IF;
					EXCEPTION WHEN insufficient_privilege THEN NULL;
					END;
				END IF;
				BEGIN
					EXECUTE format('DELETE FROM pg_temp.%I', copies[i]);
					GET DIAGNOSTICS k = ROW_COUNT;
					IF k > mine THEN
						problems := problems || format('%s: %s, it may delete tenant B''s row', rels[i], bound);
					END IF;
				EXCEPTION WHEN insufficient_privilege THEN NULL;
				END;
				RAISE EXCEPTION USING ERRCODE = 'TK001'; -- undo whatever got through
			EXCEPTION WHEN SQLSTATE 'TK001' THEN NULL;
			END;
		END LOOP;
	END LOOP;

	IF switched THEN
		RESET ROLE;
	END IF;
	FOR i IN 1 .. coalesce(array_length(copies, 1), 0) LOOP
		EXECUTE format('DROP TABLE pg_temp.%I', copies[i]);
	END LOOP;
	PERFORM set_config('app.current_tenant', '', true);
	IF cardinality(problems) > 0 THEN
		RAISE EXCEPTION 'tenantkit: isolation probe failed' USING ERRCODE = '` + probeFailed + `',
			DETAIL = array_to_string(problems, E'\n');
	END IF;
END
$tkprobe$`
}
