#!/usr/bin/env bash
# Proves the kit survives a fork (docs/security.md, invariants 4 and 12):
#  1. copies the repository to a temporary directory, adds a guarded tenant
#     migration (shipments) numbered after the last one, and runs the whole
#     suite there: no kit test may depend on the number, names or contents
#     of migrations/;
#  2. adds a migration whose tenant table forgets row level security
#     (shipment_notes) and shows that `migrate up` guards it: RLS enabled and
#     forced, the isolation policy, `migrate status --check` clean;
#  3. adds a migration with a view that bypasses RLS and shows that
#     `migrate up` refuses it, naming the file, the view and the fix.
# Needs PostgreSQL and Redis as the suite does (TEST_DATABASE_URL, TEST_REDIS_URL),
# and psql. FORK_CHECK_SUITE=0 skips step 1 (for iterating on steps 2 and 3).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
db=tk_forkcheck_$$
base=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
owner_url=$(printf '%s' "$base" | sed -E "s#(//[^/]*)/[^?]*#\1/$db#")
app_url=$(printf '%s' "$owner_url" | sed -E 's#://([^@/]*@)?#://tenantkit_app@#')
cleanup() {
	psql "$base" -qAt -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

echo "fork-check: copying the repository to $work"
(cd "$root" && git ls-files -z --cached --others --exclude-standard) |
	(cd "$root" && tar --null --ignore-failed-read -cf - -T -) | tar -C "$work" -xf -
cd "$work"
# A fork is a git repository of its own: some kit tests list its files with git.
git init -q && git add -A && git -c user.name=fork -c user.email=fork@example.invalid commit -qm "fork"

next_version() {
	local last
	last=$(find migrations/tenant -maxdepth 1 -name '*.sql' -printf '%f\n' | sed -n 's/^\([0-9][0-9]*\)_.*\.sql$/\1/p' | sort -n | tail -1)
	printf '%05d' $((10#$last + 1))
}

# Not invoices: the scaffold test generates the README's invoice resource.
shipments="migrations/tenant/$(next_version)_add_shipments.sql"
cat >"$shipments" <<'SQL'
-- +goose Up
CREATE TABLE shipments (
    id           uuid        NOT NULL DEFAULT gen_random_uuid(),
    tenant_id    uuid        NOT NULL,
    number       text        NOT NULL,
    amount_cents bigint      NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX shipments_tenant_created_idx ON shipments (tenant_id, created_at DESC, id DESC);

ALTER TABLE shipments ENABLE ROW LEVEL SECURITY;
ALTER TABLE shipments FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON shipments
    USING (tenant_id = nullif(current_setting('app.current_tenant', true), '')::uuid)
    WITH CHECK (tenant_id = nullif(current_setting('app.current_tenant', true), '')::uuid);

-- +goose Down
DROP TABLE shipments;
SQL
git add "$shipments" && git -c user.name=fork -c user.email=fork@example.invalid commit -qm "add shipments"
echo "fork-check: 1/3 the whole suite with $shipments added"
if [ "${FORK_CHECK_SUITE:-1}" != 0 ]; then
	go test -count=1 -timeout 20m ./...
fi

notes="migrations/tenant/$(next_version)_add_shipment_notes.sql"
cat >"$notes" <<'SQL'
-- +goose Up
CREATE TABLE shipment_notes (id bigserial, tenant_id uuid NOT NULL, body text NOT NULL, PRIMARY KEY (tenant_id, id));

-- +goose Down
DROP TABLE shipment_notes;
SQL
echo "fork-check: 2/3 migrate up guards the unguarded table of $notes"
go build -o "$work/bin/migrate" ./cmd/migrate
export MIGRATE_DATABASE_URL=$owner_url DATABASE_URL=$app_url
"$work/bin/migrate" up
guard=$(psql "$owner_url" -qAt -c "SELECT relrowsecurity AND relforcerowsecurity AND
	(SELECT count(*) FROM pg_policy WHERE polrelid = 'public.shipment_notes'::regclass) = 1
	FROM pg_class WHERE oid = 'public.shipment_notes'::regclass")
if [ "$guard" != t ]; then
	echo "fork-check: FAIL: migrate up left public.shipment_notes unguarded" >&2
	exit 1
fi
"$work/bin/migrate" status --check

view="migrations/tenant/$(next_version)_add_shipment_counts.sql"
cat >"$view" <<'SQL'
-- +goose Up
CREATE VIEW shipment_counts AS SELECT tenant_id, count(*) AS n FROM shipments GROUP BY 1;

-- +goose Down
DROP VIEW shipment_counts;
SQL
echo "fork-check: 3/3 migrate up refuses the RLS-bypassing view of $view"
go build -o "$work/bin/migrate" ./cmd/migrate
if out=$("$work/bin/migrate" up 2>&1); then
	echo "$out"
	echo "fork-check: FAIL: migrate up applied a view that bypasses RLS" >&2
	exit 1
fi
echo "$out"
for want in "$(basename "$view")" shipment_counts "security_invoker = true"; do
	if ! grep -qF -- "$want" <<<"$out"; then
		echo "fork-check: FAIL: the refusal does not name $want" >&2
		exit 1
	fi
done
echo "fork-check: ok: the suite passes on a fork; unguarded tables are guarded, bypassing views refused"
