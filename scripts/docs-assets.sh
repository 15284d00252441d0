#!/usr/bin/env bash
# Refreshes the Swagger UI files that /docs serves from the binary
# (internal/http/docs/assets): the page must work with no network, so the
# files are vendored from the npm package instead of loaded from a CDN.
# Usage: scripts/docs-assets.sh [version]   (default: the pinned one below)
set -euo pipefail
cd "$(dirname "$0")/.."

version="${1:-5.35.0}"
dest=internal/http/docs/assets
# Only what the page loads, plus the licences that must travel with it.
files=(swagger-ui-bundle.js swagger-ui-bundle.js.LICENSE.txt swagger-ui.css favicon-32x32.png LICENSE NOTICE)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "swagger-ui-dist@${version}" >/dev/null && tar xzf swagger-ui-dist-*.tgz)

mkdir -p "$dest"
for f in "${files[@]}"; do
  cp "$tmp/package/$f" "$dest/$f"
done
# The bundle ends with a sourceMappingURL comment; the map is not shipped.
sed -i '/^\/\/# sourceMappingURL=/d' "$dest/swagger-ui-bundle.js"
sed -i 's#/\*\# sourceMappingURL=[^*]*\*/##' "$dest/swagger-ui.css"
echo "swagger-ui-dist@${version}" >"$dest/VERSION"
echo "docs assets: swagger-ui-dist@${version} -> $dest ($(du -sh "$dest" | cut -f1))"
