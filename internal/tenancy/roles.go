package tenancy

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// EnsureAppRole creates the app role of DATABASE_URL (LOGIN, NOSUPERUSER,
// NOBYPASSRLS) when it is missing and the owner role may create roles, and
// grants it CONNECT. It returns a note for the operator when it could not.
func EnsureAppRole(ctx context.Context, owner *sql.DB, role, password string) (note string, err error) {
	var exists, canCreate bool
	err = owner.QueryRowContext(ctx, `SELECT
		EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1),
		(SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user)`, role).Scan(&exists, &canCreate)
	if err != nil {
		return "", fmt.Errorf("look up role %s: %w", role, err)
	}
	r := QuoteIdent(role)
	if !exists {
		if !canCreate {
			return fmt.Sprintf("app role %q does not exist and the migrate role may not create roles: create it with LOGIN NOSUPERUSER NOBYPASSRLS", role), nil
		}
		stmt := `CREATE ROLE ` + r + ` LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE`
		if password != "" {
			stmt += ` PASSWORD ` + quoteLiteral(password)
		}
		if _, err := owner.ExecContext(ctx, stmt); err != nil && !strings.Contains(err.Error(), "already exists") {
			return "", fmt.Errorf("create role %s: %w", role, err)
		}
	}
	if _, err := owner.ExecContext(ctx, `DO $$ BEGIN EXECUTE format('GRANT CONNECT ON DATABASE %I TO `+
		strings.ReplaceAll(r, "'", "''")+`', current_database()); END $$`); err != nil {
		return "", fmt.Errorf("grant connect to %s: %w", role, err)
	}
	return "", nil
}

// RevokeTemp takes the TEMPORARY privilege on the current database from
// PUBLIC and from the app role: a temporary table shadows every schema on its
// connection (pg_temp is searched first), so a tenant statement could read or
// write it instead of the tenant's table, and it outlives the statement on a
// pooled connection. The owner role keeps it as the database owner does. It
// is part of the grants `migrate up` applies; database privileges are not
// copied by CREATE DATABASE ... TEMPLATE, so a cloned database needs it again.
func RevokeTemp(ctx context.Context, owner execer, appRole string) error {
	stmt := `REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC`
	if appRole != "" {
		stmt += `; REVOKE TEMPORARY ON DATABASE %I FROM ` + strings.ReplaceAll(QuoteIdent(appRole), "'", "''")
	}
	if _, err := owner.ExecContext(ctx, `DO $$ BEGIN EXECUTE format('`+stmt+`', current_database(), current_database()); END $$`); err != nil {
		return fmt.Errorf("revoke temporary from %s: %w", appRole, err)
	}
	return nil
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// CheckAppRole refuses a role that could escape isolation (invariant 3): a
// superuser or BYPASSRLS role skips row-level security, and a table owner can
// disable it. Membership counts as well: a member may SET ROLE to (or inherit)
// a superuser, BYPASSRLS or owning role, and Postgres treats members of the
// owner as the owner.
func CheckAppRole(ctx context.Context, db *sql.DB) error {
	var (
		name          string
		super, bypass bool
		via, owned    sql.NullString
		ownedCount    int
	)
	err := db.QueryRowContext(ctx, `WITH me AS (SELECT * FROM pg_roles WHERE rolname = current_user),
		owned AS (
			SELECT n.nspname || '.' || c.relname AS name
			  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, me
			 WHERE NOT me.rolsuper AND pg_has_role(me.oid, c.relowner, 'MEMBER') AND c.relkind IN ('r', 'p')
			   AND n.nspname NOT IN ('pg_catalog', 'information_schema'))
		SELECT me.rolname, me.rolsuper, me.rolbypassrls,
			(SELECT string_agg(quote_ident(m.rolname), ', ' ORDER BY m.rolname) FROM pg_roles m
			  WHERE NOT me.rolsuper AND m.oid <> me.oid AND (m.rolsuper OR m.rolbypassrls)
			    AND pg_has_role(me.oid, m.oid, 'MEMBER')),
			(SELECT count(*) FROM owned),
			(SELECT string_agg(name, ', ') FROM (SELECT name FROM owned ORDER BY name LIMIT 5) o)
		FROM me`).Scan(&name, &super, &bypass, &via, &ownedCount, &owned)
	if err != nil {
		return fmt.Errorf("check app role: %w", err)
	}
	role := QuoteIdent(name)
	var problems []string
	if super {
		problems = append(problems, "is a superuser (fix: ALTER ROLE "+role+" NOSUPERUSER)")
	}
	if bypass {
		problems = append(problems, "has BYPASSRLS (fix: ALTER ROLE "+role+" NOBYPASSRLS)")
	}
	if via.Valid && via.String != "" {
		problems = append(problems, "is a member of superuser or BYPASSRLS roles "+via.String+
			" (fix: REVOKE "+via.String+" FROM "+role+")")
	}
	if ownedCount > 0 {
		list := owned.String
		if ownedCount > 5 {
			list += fmt.Sprintf(" and %d more", ownedCount-5)
		}
		problems = append(problems, "owns, or is a member of the owner of, tables "+list+
			" (fix: let the migrate role own them: run `migrate up` as MIGRATE_DATABASE_URL, ALTER TABLE ... OWNER TO it, and REVOKE the owner role from "+role+")")
	}
	if len(problems) > 0 {
		return fmt.Errorf("DATABASE_URL role %q would escape tenant isolation: it %s; DATABASE_URL must name a dedicated app role",
			name, strings.Join(problems, "; it "))
	}
	return nil
}
