#!/usr/bin/env bash
# Headless-browser check that /docs renders: installs Debian's chromium with
# apt when no Chromium is present, then runs the browser-tagged test. It
# fails (never skips) when no browser can be found or installed.
#   CI:     bash .ci/browser.sh
#   local:  make lint test && bash .ci/browser.sh
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
  echo "browser: need root to run: $*" >&2; return 1; fi; }

find_browser() {
  for b in "${CHROMIUM_BIN:-}" chromium chromium-browser google-chrome; do
    [ -n "$b" ] && command -v "$b" >/dev/null && { command -v "$b"; return 0; }
  done
  return 1
}

if ! find_browser >/dev/null; then
  echo "browser: installing chromium with apt"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null
fi
CHROMIUM_BIN=$(find_browser) || { echo "browser: no chromium after install" >&2; exit 1; }
export CHROMIUM_BIN
echo "browser: $("$CHROMIUM_BIN" --version 2>/dev/null || echo "$CHROMIUM_BIN")"
go test -count=1 -tags browser -run 'TestDocs_RendersInHeadlessChromium' -v ./internal/http/
