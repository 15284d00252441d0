MODULE := $(shell go list -m)
GO_PACKAGES := ./...

.PHONY: bench-pg bench-handlers run test test-citus test-race test-mutations test-pgbouncer lint build bench bench-migrate bench-worker services rename resource help

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

services: ## make sure PostgreSQL and Redis run locally (installs them with apt if missing)
	@bash .ci/services.sh

run: services ## migrate, seed demo tenants, run api + worker, print curl commands
	@bash scripts/dev.sh

test: services ## every test against real PostgreSQL and Redis, then /docs in headless Chromium
	go test -count=1 -timeout 20m $(GO_PACKAGES)
	bash .ci/browser.sh

test-citus: services ## isolation, concurrency, lifecycle, migration and worker tests on a throw-away Citus cluster (coordinator + 2 workers); needs Citus installed (docs/scaling.md)
	bash .ci/citus.sh

test-mutations: services ## break each isolation mechanism on purpose (mutations/*.patch); fails unless the tests guarding it fail
	bash .ci/mutations.sh

# The app role through a real PgBouncer (transaction mode, 2 server
# connections per test database, default_query_exec_mode=cache_describe):
# internal/testenv starts one per test. TEST_PGBOUNCER_EXEC_MODE=cache_statement
# (or exec) shows what breaks without cache_describe (docs/scaling.md).
PGBOUNCER_PACKAGES := ./internal/tenancy/ ./internal/tenancy/cachestore/ ./internal/http/ ./internal/tasks/ ./internal/tenantmove/ ./cmd/api/ ./cmd/worker/
test-pgbouncer: services ## the isolation, concurrency and worker suites with the app role behind PgBouncer in transaction mode
	TEST_VIA_PGBOUNCER=1 go test -count=1 -timeout 20m $(PGBOUNCER_PACKAGES)

test-race: services ## the tests under the race detector
	go test -race -count=1 -timeout 30m $(GO_PACKAGES)

lint: ## gofmt, go vet, actionlint (+ shellcheck) over .github/workflows, shellcheck over .ci/ and scripts/
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	go vet $(GO_PACKAGES)
	bash .ci/lint.sh

build: ## build the three binaries into bin/
	CGO_ENABLED=0 go build -trimpath -o bin/ ./cmd/...

bench: services ## api hot path vs bare Echo+GORM and vs the kit's plumbing: ratios for RLS, schema, mixed, 200 tenants (DURATION=1s ROUNDS=15 MANY=100; PGBOUNCER=1: also through PgBouncer, ratio vs direct)
	go run ./bench/api -duration $(or $(DURATION),1s) -rounds $(or $(ROUNDS),15) -many $(or $(MANY),100) $(if $(PGBOUNCER),-pgbouncer)

bench-pg: services ## Postgres side of tenant binding, no HTTP: CPU per page read as owner vs behind the binding, step by step (on the database make bench left)
	go run ./bench/pgbind

bench-handlers: services ## each api bench server's handler in process: CPU and allocations per request, no HTTP connections
	go test -count=1 -run '^$$' -bench Handlers -benchmem ./bench/api

bench-migrate: services ## migrations at scale over N premium tenants (N=1000): provisioning median, no-op up, one new migration
	go run ./bench/migrate -n $(or $(N),1000)

bench-worker: services ## worker: tenant-propagating task throughput vs a bare asynq handler doing the same count, as a ratio
	go run ./bench/worker

.PHONY: bench-cache
bench-cache: services ## tenant resolution per request (warm in-process hit, Redis hit, database miss) and query cache hit vs Postgres
	go test -count=1 -run '^$$' -bench 'TenantResolution|QueryCache' -benchtime $(or $(BENCHTIME),1s) ./internal/tenancy/cachestore/ ./internal/querycache/

rename: ## make the kit your product: make rename MODULE=github.com/acme/invoicer [NAME=invoicer] (module path and every product string)
	@test -n "$(MODULE)" || { echo "usage: make rename MODULE=github.com/acme/app [NAME=app]"; exit 2; }
	@bash scripts/rename.sh '$(MODULE)' '$(NAME)'

resource: ## scaffold a tenant-owned CRUD resource: make resource NAME=invoice FIELDS="number:text amount_cents:bigint"
	@test -n "$(NAME)" && test -n "$(FIELDS)" || { echo 'usage: make resource NAME=invoice FIELDS="number:text amount_cents:bigint" [PLURAL=invoices]'; exit 2; }
	go run ./tools/scaffold -name '$(NAME)' -plural '$(PLURAL)' -fields '$(FIELDS)'
