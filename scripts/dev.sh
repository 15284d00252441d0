#!/usr/bin/env bash
# Runs the whole kit locally: database created and migrated, demo tenants
# seeded, api and worker started; prints ready-to-paste curl commands.
# Needs only Go, PostgreSQL and Redis running (see .ci/services.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

export DATABASE_URL="${DATABASE_URL:-postgres://tenantkit_app@localhost:5432/tenantkit?sslmode=disable}"
export MIGRATE_DATABASE_URL="${MIGRATE_DATABASE_URL:-postgres://postgres@localhost:5432/tenantkit?sslmode=disable}"
export REDIS_URL="${REDIS_URL:-redis://localhost:6379/0}"
export JWT_SECRET="${JWT_SECRET:-dev-only-jwt-secret-change-me-0123456789}"
export ADMIN_TOKEN="${ADMIN_TOKEN:-dev-only-admin-token-change-me-012345678}"
export HTTP_ADDR="${HTTP_ADDR:-:8080}"
export LOG_FORMAT="${LOG_FORMAT:-text}"

mkdir -p bin
go build -o bin/ ./cmd/...
bin/migrate up
demo=$(bin/migrate demo)

pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM
bin/worker >bin/worker.log 2>&1 & pids+=($!)
bin/api >bin/api.log 2>&1 & pids+=($!)
for _ in $(seq 50); do curl -sf "http://localhost:${HTTP_ADDR##*:}/health" >/dev/null 2>&1 && break; sleep 0.2; done


cat <<TXT

tenantkit is running: api on ${HTTP_ADDR} (log: bin/api.log), worker (log: bin/worker.log).
Docs: http://localhost:${HTTP_ADDR##*:}/docs    Admin token: \$ADMIN_TOKEN=${ADMIN_TOKEN}
Paste these into another shell:
${demo}

Press Ctrl-C to stop.
TXT
wait
