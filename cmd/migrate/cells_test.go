package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"strconv"
	"strings"
	"testing"

	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/testenv"
	"github.com/your-org/tenantkit/migrations"
)

// migrateCells runs the command with TENANCY_CELLS / MIGRATE_TENANCY_CELLS
// naming d's cells.
func migrateCells(t *testing.T, d *testenv.DB, tenantFS fs.FS, args ...string) result {
	t.Helper()
	if tenantFS == nil {
		tenantFS = migrations.Tenant()
	}
	var app, owner []string
	for _, c := range d.Cells() {
		app = append(app, c.Name+"="+c.AppDSN)
		owner = append(owner, c.Name+"="+c.OwnerDSN)
	}
	env := map[string]string{"TENANCY_CELLS": strings.Join(app, ","), "MIGRATE_TENANCY_CELLS": strings.Join(owner, ",")}
	var stdout, stderr bytes.Buffer
	c := cli{getenv: func(k string) string { return env[k] }, stdout: &stdout, stderr: &stderr,
		control: migrations.Control(), tenant: tenantFS}
	err := c.run(context.Background(), args)
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var code exitCode
	switch {
	case err == nil:
	case errors.As(err, &code):
		r.code = int(code)
	default:
		r.code, r.stderr = 1, r.stderr+"migrate: "+err.Error()
	}
	return r
}

// hasColumn reports whether projects has column in schema of database db
// (a tenant database when db is not empty) on the cell of d.
func hasColumn(t *testing.T, d *testenv.DB, db, schema, column string) bool {
	t.Helper()
	conn := d.Owner
	if db != "" {
		dsn, err := tenancy.WithDatabase(d.OwnerURL, db)
		if err != nil {
			t.Fatal(err)
		}
		if conn, err = sql.Open("pgx", dsn); err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
	}
	var ok bool
	if err := conn.QueryRow(`SELECT EXISTS (SELECT 1 FROM information_schema.columns
		WHERE table_schema = $1 AND table_name = 'projects' AND column_name = $2)`, schema, column).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

// `migrate up`, `status` and `down` fan out over both cells, their premium
// schemas and their tenant databases (and the cells' templates): a new
// migration reaches every one, a second run has nothing to do, status shows
// no drift, and down reverts them all.
func TestCells_MigrateFansOutOverCellsSchemasAndDatabases(t *testing.T) {
	t.Parallel()
	d := testenv.Postgres(t)
	d2 := testenv.SecondCluster(t).Postgres(t)
	d.AddCell("cell2", d2)
	type where struct {
		on     *testenv.DB
		db     string
		schema string
	}
	var places []where
	for _, cell := range []string{"default", "cell2"} {
		on := map[string]*testenv.DB{"default": d, "cell2": d2}[cell]
		sid := "mig-s-" + cell
		d.Place(t, sid, tenancy.IsolationSchema, cell)
		places = append(places, where{on, "", tenancy.SchemaName(sid)}, where{on, "", "public"})
		did := "mig-d-" + cell
		d.Place(t, did, tenancy.IsolationDatabase, cell)
		places = append(places, where{on, tenancy.DatabaseName(on.Name, did), "public"})
	}

	first := migrateCells(t, d, nil, "up", "--json")
	if first.code != 0 {
		t.Fatalf("first up: exit %d\n%s\n%s", first.code, first.stdout, first.stderr)
	}
	noop := migrateCells(t, d, nil, "up", "--json")
	rep := noop.report(t)
	if noop.code != 0 || !rep.NothingToDo {
		t.Fatalf("second up is not a no-op: exit %d\n%s\n%s", noop.code, noop.stdout, noop.stderr)
	}
	seen := map[string]int{}
	for _, x := range rep.Targets {
		seen[x.Cell+"/"+x.Kind]++
	}
	// Per cell: control, public, one premium schema, one tenant database and the template.
	for _, cell := range []string{"default", "cell2"} {
		if seen[cell+"/control"] != 1 || seen[cell+"/shared"] != 1 || seen[cell+"/tenant"] != 1 || seen[cell+"/database"] != 2 {
			t.Fatalf("cell %s targets %v, want control, shared, tenant x1 and database x2 (tenant + template)\n%s", cell, seen, noop.stdout)
		}
	}

	extra, versions := testenv.TenantMigrations(t, testenv.Migration{Name: "project_color", SQL: "-- +goose Up\nALTER TABLE projects ADD COLUMN color text;\n-- +goose Down\nALTER TABLE projects DROP COLUMN color;\n"})
	up := migrateCells(t, d, extra, "up", "--json")
	if up.code != 0 {
		t.Fatalf("up with a new migration: exit %d\n%s\n%s", up.code, up.stdout, up.stderr)
	}
	for _, p := range places {
		if !hasColumn(t, p.on, p.db, p.schema, "color") {
			t.Errorf("the new migration missed %s.%s on %s", p.db, p.schema, p.on.Name)
		}
	}
	if r := migrateCells(t, d, extra, "up", "--json"); r.code != 0 || !r.report(t).NothingToDo {
		t.Fatalf("up after the new migration is not a no-op: exit %d\n%s", r.code, r.stdout)
	}
	st := migrateCells(t, d, extra, "status", "--json", "--check")
	if st.code != 0 || st.status(t).Drift {
		t.Fatalf("status after up: exit %d drift\n%s\n%s", st.code, st.stdout, st.stderr)
	}
	down := migrateCells(t, d, extra, "down", "--to", itoa(versions[0]-1), "--json")
	if down.code != 0 {
		t.Fatalf("down: exit %d\n%s\n%s", down.code, down.stdout, down.stderr)
	}
	for _, p := range places {
		if hasColumn(t, p.on, p.db, p.schema, "color") {
			t.Errorf("down left the column in %s.%s on %s", p.db, p.schema, p.on.Name)
		}
	}
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }
