#!/usr/bin/env bash
# make rename: turn the kit into your product. Rewrites the Go module path
# (MODULE) and the product name (NAME, default the module's last element)
# everywhere it appears: the app role (<name>_app), Redis key prefixes,
# the metrics namespace, problem type URLs, the WWW-Authenticate realm, the
# OpenAPI title, docs, compose and CI. Then builds.
set -euo pipefail
module="${1:?usage: scripts/rename.sh MODULE [NAME]}"
old_module="$(go list -m)"
name="${2:-$(basename "$module" | tr '[:upper:]-' '[:lower:]_')}"
if ! [[ "$name" =~ ^[a-z][a-z0-9_]{1,30}$ ]]; then
	echo "NAME=$name must match ^[a-z][a-z0-9_]{1,30}\$ (it names a Postgres role, metrics and Redis keys); pass NAME=..." >&2
	exit 2
fi
if [ "$module" = "$old_module" ]; then
	echo "MODULE is already $module" >&2
	exit 2
fi
upper="$(tr '[:lower:]' '[:upper:]' <<<"$name")"
go mod edit -module "$module"
# Text files only (-I), never go.sum or git's own files.
files=$(grep -rIl --exclude-dir=.git --exclude=go.sum -e "$old_module" -e tenantkit -e TENANTKIT . || true)
for f in $files; do
	sed -i -e "s#$old_module#$module#g" -e "s#tenantkit#$name#g" -e "s#TENANTKIT#$upper#g" "$f"
done
echo "renamed module $old_module -> $module, product tenantkit -> $name (app role ${name}_app)"
go build ./...
