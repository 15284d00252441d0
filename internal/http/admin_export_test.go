package http_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/your-org/tenantkit/internal/apperr"
	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/tenantdata"
	"github.com/your-org/tenantkit/internal/testenv"
)

// seedAwkwardRows writes rows exercising every column type of the tenant
// migrations with values that break naive formats: tabs, newlines,
// backslashes, NUL-free unicode, empty strings, NULLs, microsecond
// timestamps, nested JSON with big and precise numbers.
func seedAwkwardRows(t *testing.T, owner *sql.DB, tn tenancy.Tenant, n int) {
	t.Helper()
	tx, err := owner.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	schema := tenancy.QuoteIdent(tn.Schema())
	for _, q := range []string{
		`SELECT set_config('app.current_tenant', $1, true)`,
		`INSERT INTO ` + schema + `.projects (tenant_id, name, description, created_at, updated_at)
		 SELECT $1::uuid, 'p' || i || E'\t"tab" \\ back\nnewline ünï ✓', CASE WHEN i % 3 = 0 THEN '' ELSE repeat('d', i % 50) END,
		        '2024-02-29 23:59:59.123456+00'::timestamptz + i * interval '1 microsecond', now()
		 FROM generate_series(1, ` + itoa(n) + `) i`,
		`INSERT INTO ` + schema + `.reports (tenant_id, kind, status, result, error, finished_at)
		 SELECT $1::uuid, 'project_summary', CASE WHEN i % 2 = 0 THEN 'succeeded' ELSE 'failed' END,
		        CASE WHEN i % 2 = 0 THEN jsonb_build_object('project_count', i, 'big', 123456789012345678901234567890.000000001, 'nested', jsonb_build_array('a', E'b\nc', null, true)) END,
		        CASE WHEN i % 2 = 1 THEN E'boom\t' || i END,
		        CASE WHEN i % 4 = 0 THEN NULL ELSE now() END
		 FROM generate_series(1, ` + itoa(n) + `) i`,
	} {
		if _, err := tx.Exec(q, tn.ID.String()); err != nil {
			t.Fatalf("seed %s: %v", tn.Identifier, err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

func itoa(n int) string { return jsonNumber(n) }

func jsonNumber(n int) string { b, _ := json.Marshal(n); return string(b) }

// tenantRows renders every row of every tenant table of tn, without the
// tenant_id column, in id order: equal renderings mean equal data.
func tenantRows(t *testing.T, owner *sql.DB, tn tenancy.Tenant) map[string]string {
	t.Helper()
	tx, err := owner.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`SELECT set_config('app.current_tenant', $1, true)`, tn.ID.String()); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	tables, err := tenancy.TenantTables(context.Background(), owner, tn.Schema())
	if err != nil {
		t.Fatal(err)
	}
	for _, table := range tables {
		var s sql.NullString
		var foreign int
		q := `SELECT string_agg((to_jsonb(t) - 'tenant_id')::text, E'\n' ORDER BY t.id), count(*) FILTER (WHERE t.tenant_id <> $1)
			FROM ` + tenancy.QuoteIdent(tn.Schema()) + `.` + tenancy.QuoteIdent(table) + ` t`
		if tn.Isolation == tenancy.IsolationRLS {
			q += ` WHERE t.tenant_id = $1`
		}
		if err := tx.QueryRow(q, tn.ID).Scan(&s, &foreign); err != nil {
			t.Fatal(err)
		}
		if foreign != 0 {
			t.Errorf("%s.%s holds %d rows of another tenant", tn.Schema(), table, foreign)
		}
		out[table] = s.String
	}
	return out
}

func export(t *testing.T, s *testenv.Stack, id uuid.UUID, query string) []byte {
	t.Helper()
	res := s.Do(t, "GET", "/admin/v1/tenants/"+id.String()+"/export"+query, nil, testenv.AsAdmin()...)
	if res.Status != http.StatusOK {
		t.Fatalf("export: %d %s", res.Status, res.Body)
	}
	return res.Body
}

func importArchive(t *testing.T, s *testenv.Stack, archive []byte, query string) testenv.Response {
	t.Helper()
	return s.Do(t, "POST", "/admin/v1/tenants/import"+query, archive,
		append(testenv.AsAdmin(), "Content-Type", "application/gzip")...)
}

func TestExportImport_RoundTripIntoTheOtherTierIsLossless(t *testing.T) {
	t.Parallel()
	s := testenv.NewStack(t, testenv.StackOptions{})
	for _, from := range []string{"standard", "premium"} {
		orig := adminCreate(t, s, map[string]any{"identifier": "orig-" + from, "name": "Orig " + from, "tier": from, "metadata": map[string]any{"plan": from}})
		noise := adminCreate(t, s, map[string]any{"identifier": "noise-" + from, "name": "Noise", "tier": from})
		seedAwkwardRows(t, s.Owner, orig, 300)
		seedAwkwardRows(t, s.Owner, noise, 50)

		archive := export(t, s, orig.ID, "")
		other := map[string]string{"standard": "schema", "premium": "rls"}[from]
		newID := uuid.New()
		res := importArchive(t, s, archive, "?id="+newID.String()+"&identifier=copy-"+from+"&isolation="+other)
		if res.Status != http.StatusCreated {
			t.Fatalf("import %s into %s: %d %s", from, other, res.Status, res.Body)
		}
		var cp tenancy.Tenant
		res.JSON(t, &cp)
		if cp.ID != newID || string(cp.Isolation) != other || cp.Status != tenancy.StatusActive || cp.Name != orig.Name || cp.Tier != orig.Tier {
			t.Fatalf("imported tenant %+v, want active %s copy of %+v under %s", cp, other, orig, newID)
		}
		want, got := tenantRows(t, s.Owner, orig), tenantRows(t, s.Owner, cp)
		if len(want) < 2 || want["projects"] == "" || want["reports"] == "" {
			t.Fatalf("nothing to compare: %v", want)
		}
		for table := range want {
			if got[table] != want[table] {
				t.Errorf("%s -> %s: table %s differs after the round trip", from, other, table)
			}
		}
		for _, a := range []struct {
			id     uuid.UUID
			action string
		}{{orig.ID, "tenant.export"}, {cp.ID, "tenant.import"}} {
			if l := listAudit(t, s, "?tenant_id="+a.id.String()+"&action="+a.action); len(l.Items) != 1 {
				t.Errorf("%s events of %s: %+v, want 1", a.action, a.id, l.Items)
			}
		}
		// The copy is served by the tenant API from its new place.
		list := s.Do(t, "GET", "/api/v1/projects?limit=100", nil, testenv.AsTenant(t, &cp)...)
		if list.Status != http.StatusOK || !strings.Contains(string(list.Body), `\t\"tab\"`) {
			t.Errorf("copy's projects: %d %.200s", list.Status, list.Body)
		}
	}
}

func TestExportImport_RestoreAfterDeleteKeepsTheIDAndUncompressedWorks(t *testing.T) {
	t.Parallel()
	s := testenv.NewStack(t, testenv.StackOptions{})
	orig := adminCreate(t, s, map[string]any{"identifier": "restored", "name": "Restored"})
	seedAwkwardRows(t, s.Owner, orig, 20)
	want := tenantRows(t, s.Owner, orig)
	archive := export(t, s, orig.ID, "?compress=none")
	if _, err := tar.NewReader(bytes.NewReader(archive)).Next(); err != nil {
		t.Fatalf("compress=none is not a plain tar: %v", err)
	}
	if res := s.Do(t, "DELETE", "/admin/v1/tenants/"+orig.ID.String(), nil, testenv.AsAdmin()...); res.Status != http.StatusNoContent {
		t.Fatal(res.Status)
	}
	res := s.Do(t, "POST", "/admin/v1/tenants/import", archive, append(testenv.AsAdmin(), "Content-Type", "application/x-tar")...)
	if res.Status != http.StatusCreated {
		t.Fatalf("restore: %d %s", res.Status, res.Body)
	}
	var back tenancy.Tenant
	res.JSON(t, &back)
	if back.ID != orig.ID || back.Identifier != orig.Identifier || back.Isolation != orig.Isolation {
		t.Fatalf("restored %+v, want the original's id, identifier and isolation", back)
	}
	if got := tenantRows(t, s.Owner, back); got["projects"] != want["projects"] || got["reports"] != want["reports"] {
		t.Error("restored rows differ from the exported ones")
	}
	// Tokens issued for the original id work again.
	if r := s.Do(t, "GET", "/api/v1/projects", nil, testenv.AsTenant(t, &orig)...); r.Status != http.StatusOK {
		t.Errorf("old token after restore: %d", r.Status)
	}
}

// rewriteArchive decompresses archive, lets edit change its files, and
// returns it as a plain tar.
func rewriteArchive(t *testing.T, archive []byte, edit func(name string, body []byte) []byte) []byte {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(archive))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		body = edit(h.Name, body)
		if body == nil {
			continue
		}
		h.Size = int64(len(body))
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(body)
	}
	tw.Close()
	return out.Bytes()
}

// assertNothingLeft checks that a failed import left no registry row, no
// schema and no rows.
func assertNothingLeft(t *testing.T, s *testenv.Stack, id uuid.UUID, identifier string) {
	t.Helper()
	var rows, tenants int
	var schema bool
	if err := s.Owner.QueryRow(`SELECT count(*) FROM tenancy.tenants WHERE id = $1 OR identifier = $2`, id, identifier).Scan(&tenants); err != nil {
		t.Fatal(err)
	}
	if err := s.Owner.QueryRow(`SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, tenancy.SchemaName(identifier)).Scan(&schema); err != nil {
		t.Fatal(err)
	}
	if err := s.Owner.QueryRow(`SELECT (SELECT count(*) FROM public.projects WHERE tenant_id = $1) + (SELECT count(*) FROM public.reports WHERE tenant_id = $1)`, id).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if tenants != 0 || schema || rows != 0 {
		t.Errorf("failed import left %d registry rows, schema=%v, %d shared rows", tenants, schema, rows)
	}
}

func TestImport_BadArchivesAreRefusedAndLeaveNothing(t *testing.T) {
	t.Parallel()
	s := testenv.NewStack(t, testenv.StackOptions{})
	orig := adminCreate(t, s, map[string]any{"identifier": "source", "name": "Source"})
	seedAwkwardRows(t, s.Owner, orig, 40)
	archive := export(t, s, orig.ID, "")
	newer := func(name string, b []byte) []byte {
		if name == tenantdata.ManifestFile {
			var m map[string]any
			json.Unmarshal(b, &m)
			m["migration_version"] = 99999
			b, _ = json.Marshal(m)
		}
		return b
	}
	flipByte := func(name string, b []byte) []byte {
		if name == "tables/projects.copy" {
			b = bytes.Replace(b, []byte(`p17\t`), []byte(`p71\t`), 1)
		}
		return b
	}
	dropRow := func(name string, b []byte) []byte {
		if name == "tables/reports.copy" {
			b = b[bytes.IndexByte(b, '\n')+1:]
		}
		return b
	}
	dropFile := func(name string, b []byte) []byte {
		if name == "tables/reports.copy" {
			return nil
		}
		return b
	}
	foreignRow := func(name string, b []byte) []byte {
		if name == "tables/projects.copy" {
			b = bytes.Replace(b, []byte(orig.ID.String()), []byte(uuid.NewString()), 1)
		}
		return b
	}
	type badCase struct {
		name      string
		archive   []byte
		isolation string
		status    int
		code      apperr.Code
	}
	cases := []badCase{
		{"newer migration version", rewriteArchive(t, archive, newer), "schema", 409, apperr.Conflict},
		{"changed byte", rewriteArchive(t, archive, flipByte), "schema", 400, apperr.BadRequest},
		{"missing row", rewriteArchive(t, archive, dropRow), "schema", 400, apperr.BadRequest},
		{"missing table file", rewriteArchive(t, archive, dropFile), "schema", 400, apperr.BadRequest},
		{"row of another tenant", rewriteArchive(t, archive, foreignRow), "schema", 400, apperr.BadRequest},
		{"truncated", archive[:len(archive)*2/3], "schema", 400, apperr.BadRequest},
		{"not an archive", []byte("hello"), "schema", 400, apperr.BadRequest},
		// No "rows already in the shared tables" case any more: keys
		// include tenant_id (00004_tenant_keys.sql), so a copy of the
		// original's rows under the new tenant's id conflicts with nothing.
	}
	run := func(cases []badCase) {
		for i, c := range cases {
			id, ident := uuid.New(), "failed-"+c.isolation+"-"+itoa(i)
			res := importArchive(t, s, c.archive, "?id="+id.String()+"&identifier="+ident+"&isolation="+c.isolation)
			if res.Status != c.status || res.Code() != c.code {
				t.Errorf("%s into %s: %d %s, want %d %s", c.name, c.isolation, res.Status, res.Body, c.status, c.code)
			}
			assertNothingLeft(t, s, id, ident)
		}
	}
	run(cases)
	// With the original gone, corrupt archives into the shared tables fail
	// on the archive itself, after rows were copied: rolled back too.
	if res := s.Do(t, "DELETE", "/admin/v1/tenants/"+orig.ID.String(), nil, testenv.AsAdmin()...); res.Status != http.StatusNoContent {
		t.Fatal(res.Status)
	}
	var rlsCases []badCase
	for _, c := range cases[1:6] {
		c.isolation = "rls"
		rlsCases = append(rlsCases, c)
	}
	run(rlsCases)
	for _, q := range []string{"?id=nope", "?identifier=Bad_Name", "?isolation=database"} {
		if res := importArchive(t, s, archive, q); res.Status != http.StatusBadRequest || res.Code() != apperr.ValidationFailed {
			t.Errorf("import%s: %d %s, want 400 validation_failed", q, res.Status, res.Body)
		}
	}
	if res := s.Do(t, "POST", "/admin/v1/tenants/import", archive, append(testenv.AsAdmin(), "Content-Type", "text/plain")...); res.Status != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain archive: %d, want 415", res.Status)
	}
	if res := s.Do(t, "GET", "/admin/v1/tenants/"+uuid.NewString()+"/export?compress=zip", nil, testenv.AsAdmin()...); res.Status != http.StatusBadRequest {
		t.Errorf("compress=zip: %d, want 400", res.Status)
	}
	if res := s.Do(t, "GET", "/admin/v1/tenants/"+uuid.NewString()+"/export", nil, testenv.AsAdmin()...); res.Status != http.StatusNotFound {
		t.Errorf("export of an unknown tenant: %d, want 404", res.Status)
	}
}
