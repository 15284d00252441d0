package config_test

import (
	"strings"
	"testing"

	"github.com/your-org/tenantkit/internal/config"
	"github.com/your-org/tenantkit/internal/tenancy"
)

func TestCells_DefaultIsDatabaseURL(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, map[string]string{"JWT_SECRET": goodSecret,
		"DATABASE_URL": "postgres://app@db1/tk", "MIGRATE_DATABASE_URL": "postgres://owner@db1/tk"}, config.API)
	want := []tenancy.Cell{{Name: "default", AppDSN: "postgres://app@db1/tk", OwnerDSN: "postgres://owner@db1/tk"}}
	if len(c.Cells) != 1 || c.Cells[0] != want[0] {
		t.Fatalf("cells = %+v, want %+v", c.Cells, want)
	}
	// 1 cell x (25 + 15) + 16 tenant databases x 2.
	if c.Budget.MaxConnections != 72 || c.Budget.MaxDatabases != 16 {
		t.Fatalf("budget = %+v, want 72 connections, 16 databases", c.Budget)
	}
}

func TestCells_ParsedInOrderWithDefaultFirst(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, map[string]string{"JWT_SECRET": goodSecret, "ADMIN_TOKEN": strings.Repeat("a", 32),
		"TENANCY_CELLS":           "eu2=postgres://app@db2/tk,default=postgres://app@db1/tk",
		"MIGRATE_TENANCY_CELLS":   "default=postgres://owner@db1/tk, eu2=postgres://owner@db2/tk",
		"TENANCY_MAX_CONNECTIONS": "100", "TENANCY_DATABASE_POOL_SIZE": "4"}, config.API)
	if got := strings.Join(c.CellNames(), ","); got != "default,eu2" {
		t.Fatalf("cells %s, want default,eu2", got)
	}
	if c.Cells[1].AppDSN != "postgres://app@db2/tk" || c.Cells[1].OwnerDSN != "postgres://owner@db2/tk" {
		t.Fatalf("eu2 = %+v", c.Cells[1])
	}
	if c.DatabaseURL != "postgres://app@db1/tk" || c.MigrateDatabaseURL != "postgres://owner@db1/tk" {
		t.Fatalf("DATABASE_URL %s / MIGRATE_DATABASE_URL %s should follow cell default", c.DatabaseURL, c.MigrateDatabaseURL)
	}
	if c.Budget.MaxDatabases != (100-2*40)/4 {
		t.Fatalf("budget %+v: want (100 - 2x40)/4 = 5 tenant databases", c.Budget)
	}
}

func TestCells_EveryProblemListedNoSecretPrinted(t *testing.T) {
	t.Parallel()
	secret := "s3cr3t-pw"
	_, err := config.Load(env(map[string]string{"JWT_SECRET": goodSecret, "ADMIN_TOKEN": strings.Repeat("a", 32),
		"TENANCY_CELLS":           "eu2=postgres://app:" + secret + "@db2/tk,Bad Name=postgres://x:" + secret + "@h/d,eu3=mysql://u:" + secret + "@h/d,eu2=postgres://a@b/c",
		"MIGRATE_TENANCY_CELLS":   "default=postgres://o:" + secret + "@db1/tk",
		"TENANCY_MAX_CONNECTIONS": "10"}), config.API)
	ps := problems(t, err)
	all := strings.Join(ps, "\n")
	if strings.Contains(all, secret) {
		t.Fatalf("a problem prints a secret:\n%s", all)
	}
	for _, want := range []string{"entry 2", "cell eu3 must be a postgres", "cell eu2 is listed twice",
		"must name a cell default", "MIGRATE_TENANCY_CELLS has no cell eu2", "TENANCY_MAX_CONNECTIONS=10"} {
		if !strings.Contains(all, want) {
			t.Errorf("problems lack %q:\n%s", want, all)
		}
	}
}
