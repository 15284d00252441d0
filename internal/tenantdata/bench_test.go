package tenantdata_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/your-org/tenantkit/internal/tenancy"
	"github.com/your-org/tenantkit/internal/tenantdata"
	"github.com/your-org/tenantkit/internal/testenv"
)

// BenchmarkExportImport measures export (snapshot + gzip archive to disk)
// and import (archive -> COPY into a new schema tenant) of a tenant with
// 50k projects and 50k reports, in MB/s of table data:
//
//	go test -run '^$' -bench ExportImport -benchtime 1x ./internal/tenantdata/
func BenchmarkExportImport(b *testing.B) {
	d := testenv.Postgres(b)
	src := d.Tenant(b, "bench-src", tenancy.TierStandard)
	seed(b, d, src, 50_000)
	latest, err := d.Migrator().LatestTenantVersion()
	if err != nil {
		b.Fatal(err)
	}
	a := &tenantdata.Archiver{Owner: d.Owner, LatestVersion: latest, TempDir: b.TempDir()}
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		path := filepath.Join(b.TempDir(), "archive.tar.gz")
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		snap, err := a.Snapshot(ctx, src)
		if err != nil {
			b.Fatal(err)
		}
		if err := snap.WriteTo(f, true); err != nil {
			b.Fatal(err)
		}
		exported := time.Since(start)
		mb := float64(snap.Bytes()) / 1e6
		snap.Close()
		f.Close()
		st, _ := os.Stat(path)

		f, _ = os.Open(path)
		start = time.Now()
		life := d.Lifecycle()
		_, _, err = a.Import(ctx, life, f, tenantdata.ImportOptions{ID: uuid.New(), Identifier: "bench-copy-" + itoa(i), Isolation: tenancy.IsolationSchema})
		if err != nil {
			b.Fatal(err)
		}
		imported := time.Since(start)
		f.Close()
		b.ReportMetric(mb, "table_MB")
		b.ReportMetric(float64(st.Size())/1e6, "archive_MB")
		b.ReportMetric(mb/exported.Seconds(), "export_MB/s")
		b.ReportMetric(mb/imported.Seconds(), "import_MB/s")
		b.ReportMetric(100_000/exported.Seconds(), "export_rows/s")
		b.ReportMetric(100_000/imported.Seconds(), "import_rows/s")
	}
}

func itoa(i int) string { return string(rune('a' + i%26)) }

func seed(b *testing.B, d *testenv.DB, t *tenancy.Tenant, n int) {
	b.Helper()
	tx, err := d.Owner.Begin()
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Rollback()
	for _, q := range []string{
		`SELECT set_config('app.current_tenant', $1, true)`,
		`INSERT INTO projects (tenant_id, name, description) SELECT $1::uuid, 'project ' || i, repeat('x', 80) FROM generate_series(1, $2::int) i`,
		`INSERT INTO reports (tenant_id, kind, status, result, finished_at) SELECT $1::uuid, 'project_summary', 'succeeded', jsonb_build_object('project_count', i), now() FROM generate_series(1, $2::int) i`,
	} {
		args := []any{t.ID.String()}
		if q[0] == 'I' {
			args = append(args, n)
		}
		if _, err := tx.Exec(q, args...); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
}
