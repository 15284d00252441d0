package testenv

import (
	"os"
	"strconv"
	"testing"

	"github.com/your-org/tenantkit/internal/testenv/pgbouncer"
)

// viaPgBouncer routes the app role (AppURL, and so App) through a PgBouncer
// of this test in transaction mode, as production behind Debian's PgBouncer
// 1.18 runs: default_query_exec_mode=cache_describe, since 1.18 cannot keep
// named prepared statements (docs/scaling.md). The owner role stays direct: migrations and moves
// need a session (docs/scaling.md). The pool is smaller than App's
// connections, so clients really share server connections.
//
// TEST_PGBOUNCER_EXEC_MODE overrides the mode (e.g. cache_statement or exec,
// to see what breaks); TEST_PGBOUNCER_POOL_SIZE the pool (default 2).
func (d *DB) viaPgBouncer(t testing.TB, base string) {
	t.Helper()
	size, _ := strconv.Atoi(os.Getenv("TEST_PGBOUNCER_POOL_SIZE"))
	if size <= 0 {
		size = 2
	}
	mode := os.Getenv("TEST_PGBOUNCER_EXEC_MODE")
	if mode == "" {
		mode = "cache_describe"
	}
	d.Pooler = pgbouncer.Start(t, pgbouncer.Options{Upstream: base, PoolSize: size})
	d.AppURL = d.Pooler.URL(d.AppURL, map[string]string{"default_query_exec_mode": mode})
}
