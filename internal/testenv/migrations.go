package testenv

import (
	"fmt"
	"io/fs"
	"testing"
	"testing/fstest"

	"github.com/pressly/goose/v3"

	"github.com/your-org/tenantkit/migrations"
)

// Migration is a test-only tenant migration: a name (without version) and
// its SQL.
type Migration struct {
	Name string // e.g. "widgets"
	SQL  string
}

// TenantMigrations returns the embedded tenant migrations plus extra ones,
// numbered after the latest embedded version in the order given, and the
// versions it gave them. Tests never name a version or a file of
// migrations/: a fork that adds its own migrations keeps them green.
func TenantMigrations(t testing.TB, extra ...Migration) (fs.FS, []int64) {
	t.Helper()
	out := fstest.MapFS{}
	base := migrations.Tenant()
	names, err := fs.Glob(base, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		b, err := fs.ReadFile(base, n)
		if err != nil {
			t.Fatal(err)
		}
		out[n] = &fstest.MapFile{Data: b}
	}
	latest := LatestTenantVersion(t)
	versions := make([]int64, len(extra))
	for i, m := range extra {
		versions[i] = latest + int64(i) + 1
		out[fmt.Sprintf("%05d_%s.sql", versions[i], m.Name)] = &fstest.MapFile{Data: []byte(m.SQL)}
	}
	return out, versions
}

// LatestTenantVersion is the highest version of the embedded tenant set.
func LatestTenantVersion(t testing.TB) int64 {
	t.Helper()
	names, err := fs.Glob(migrations.Tenant(), "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	var latest int64
	for _, n := range names {
		v, err := goose.NumericComponent(n)
		if err != nil {
			t.Fatalf("migration %s: %v", n, err)
		}
		latest = max(latest, v)
	}
	return latest
}
