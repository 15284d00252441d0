#!/usr/bin/env bash
# make test-citus: starts a throw-away Citus cluster (a coordinator and two
# workers, each its own PostgreSQL instance on a free private port under a
# temporary directory, run as the postgres user), registers the workers, and
# runs the isolation, concurrency, lifecycle, migration and worker tests
# against the coordinator (TEST_DATABASE_URL, TEST_CITUS=1: internal/testenv
# then builds each test database on all three nodes, with schema-based
# sharding on before its first migrate up). The cluster is stopped and
# removed on exit, whatever happened.
#
# Needs Citus installed for the local PostgreSQL (docs/scaling.md, Citus:
# Citus's own packages). Without it this FAILS; it never skips.
#   make test-citus                       the Citus suite
#   CITUS_TESTS='TestX' make test-citus   a narrower -run pattern
#   CITUS_PACKAGES='./internal/tenantmove/' CITUS_TESTS=. make test-citus
#   bash .ci/citus.sh -- CMD ARGS...      run CMD against the cluster instead
#                                         (e.g. go run ./bench/api -postgres "$TEST_DATABASE_URL")
set -euo pipefail
cd "$(dirname "$0")/.."

bindir=${PG_BINDIR:-$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -1)}
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
  echo "test-citus: no PostgreSQL server programs (initdb) found; set PG_BINDIR" >&2
  exit 1
fi
version=$(basename "$(dirname "$bindir")")
sharedir=$("$bindir/postgres" -C sharedir -D /nonexistent 2>/dev/null || echo "/usr/share/postgresql/$version")
if [ ! -f "$sharedir/extension/citus.control" ] || [ ! -f "$(dirname "$bindir")/lib/citus.so" ]; then
  echo "test-citus: Citus is not installed for PostgreSQL $version ($sharedir/extension/citus.control missing)." >&2
  echo "  Install it from Citus's packages (docs/scaling.md, Citus), e.g. on Debian/Ubuntu:" >&2
  echo "  curl https://install.citusdata.com/community/deb.sh | sudo bash && sudo apt-get install postgresql-$version-citus-12.1" >&2
  exit 1
fi

# As the postgres user when we are root (PostgreSQL refuses to run as root).
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

free_port() {
  local p
  for _ in $(seq 200); do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  echo "test-citus: no free port found" >&2
  return 1
}

work=$(mktemp -d /tmp/tk-citus.XXXXXX)
chmod 755 "$work"
if [ "$(id -u)" -eq 0 ]; then chown postgres "$work"; fi
nodes=(coordinator worker1 worker2)
declare -A port
stop() {
  local n
  for n in "${nodes[@]}"; do
    if [ -f "$work/$n/postmaster.pid" ]; then
      as_pg "$bindir/pg_ctl" -D "$work/$n" -m immediate -w stop >/dev/null 2>&1 || true
    fi
  done
  rm -rf "$work"
}
trap stop EXIT

for n in "${nodes[@]}"; do
  port[$n]=$(free_port)
  as_pg "$bindir/initdb" -D "$work/$n" -U postgres --auth=trust -E UTF8 --no-sync >/dev/null
  cat >>"$work/$n/postgresql.conf" <<CONF
port = ${port[$n]}
listen_addresses = '127.0.0.1'
unix_socket_directories = '$work'
shared_preload_libraries = 'citus'
max_connections = 300
citus.shard_count = 8
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
  as_pg "$bindir/pg_ctl" -D "$work/$n" -l "$work/$n.log" -w start >/dev/null
done

sql() { "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$1" -U postgres -d postgres -c "$2" >/dev/null; }
for n in "${nodes[@]}"; do
  # The app role first, on every node: Citus opens connections to the
  # workers as the role of the statement.
  sql "${port[$n]}" "CREATE ROLE tenantkit_app LOGIN NOSUPERUSER NOBYPASSRLS"
  sql "${port[$n]}" "CREATE EXTENSION citus"
done
c=${port[coordinator]}
sql "$c" "SELECT citus_set_coordinator_host('127.0.0.1', $c)"
sql "$c" "SELECT citus_add_node('127.0.0.1', ${port[worker1]})"
sql "$c" "SELECT citus_add_node('127.0.0.1', ${port[worker2]})"
echo "test-citus: coordinator 127.0.0.1:$c, workers :${port[worker1]} :${port[worker2]} (Citus $(
  "$bindir/psql" -X -qAt -h 127.0.0.1 -p "$c" -U postgres -d postgres -c "SELECT extversion FROM pg_extension WHERE extname = 'citus'"))"

export TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$c/postgres?sslmode=disable" TEST_CITUS=1
if [ "${1:-}" = -- ]; then
  shift
  "$@"
  exit
fi
# What must hold on Citus as on plain PostgreSQL: the Citus layout and
# binding tests (-tags citus), cross-tenant isolation of premium and standard
# tenants, exact-count concurrent load, provisioning and destroy, reports and
# the worker, the key check and migrations. Left out, as Citus limitations
# rather than tenant behaviour (docs/scaling.md, "What Citus forbids"):
#   TestCatalog_CheckReportsEveryWayToBypassRLS: builds its relations in one
#     transaction that creates functions after a parallel query on a
#     distributed table, which Citus refuses;
#   TestMigrate_RefusesRelationsThatBypassRLS/widened_policy: Citus 12.1 fails
#     with an internal error on that policy in a distributed schema (the
#     migration is still refused, by Citus rather than by the guard).
# And, as combinations the kit does not offer on Citus: tests that place
# database tenants on the default cell (database isolation is refused on a
# Citus cell, TestCitus_DatabaseIsolationIsRefused), and the PgBouncer test
# that counts server connections by pg_backend_pid(), which on Citus is the
# pid of the worker backend a routed statement ran on.
tests=${CITUS_TESTS:-'Citus|Isolation|Concurren|OtherTenant|Projects_|Admin_Create|Admin_GetPatchDelete|Reports|Report|Worker|Enqueue|Middleware|Provision|Destroy|Bind|GORM|Unbound|ZeroDowntime|Stack_|Probe_|UpSchema_|PGStore|ExportImport|Audit_|Catalog|Fleet|Migrat|Guard|Keys|Up_|Down_|Tenant_'}
skip='TestCatalog_CheckReportsEveryWayToBypassRLS|TestMigrate_RefusesRelationsThatBypassRLS/widened_policy'
skip+='|TestCells_AllIsolationsOnTwoServersStayIsolated|TestCells_MigrateFansOutOverCellsSchemasAndDatabases'
skip+='|TestPgBouncer_ClientsSharingAServerConnectionNeverSeeAnotherBinding'
read -r -a pkgs <<<"${CITUS_PACKAGES:-./internal/tenancy/ ./internal/http/ ./internal/tasks/ ./cmd/migrate/}"
go test -tags citus -count=1 -timeout 40m -run "$tests" -skip "$skip" "${pkgs[@]}"
