#!/usr/bin/env bash
# Lints what gofmt and go vet do not see: the GitHub workflows with actionlint
# (which also runs shellcheck over every `run:` block), and the shell scripts
# of .ci/ and scripts/ with shellcheck. shellcheck is installed with apt when
# missing; actionlint is built from the Go module proxy at a pinned version.
#   make lint                          (gofmt, go vet, then this)
#   bash .ci/lint.sh                   everything
#   bash .ci/lint.sh actionlint F...   actionlint over the given workflow files only
set -euo pipefail
cd "$(dirname "$0")/.."

# github.com/rhysd/actionlint; bump deliberately (dependabot does not see it).
ACTIONLINT_VERSION=v1.7.12

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
  echo "lint: need root to run: $*" >&2; return 1; fi; }

ensure_shellcheck() {
  command -v shellcheck >/dev/null && return 0
  echo "lint: installing shellcheck with apt"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends shellcheck >/dev/null
  command -v shellcheck >/dev/null || { echo "lint: shellcheck is missing after apt-get install" >&2; exit 1; }
}

# -shellcheck with a path: actionlint would silently skip the run: blocks if
# it found no shellcheck.
actionlint() {
  go run "github.com/rhysd/actionlint/cmd/actionlint@${ACTIONLINT_VERSION}" \
    -shellcheck "$(command -v shellcheck)" "$@"
}

ensure_shellcheck
if [ "${1:-}" = actionlint ]; then
  shift
  actionlint "$@"
  exit
fi

echo "lint: actionlint ${ACTIONLINT_VERSION} over .github/workflows"
actionlint .github/workflows/*.yml
echo "lint: shellcheck over .ci/ and scripts/"
# Every shell script there, by extension or by a bash/sh shebang (.ci/run has neither extension nor .sh).
scripts=()
for f in .ci/* scripts/*; do
  [ -f "$f" ] || continue
  case "$f" in
  *.sh) scripts+=("$f") ;;
  *) head -n1 "$f" | grep -Eq '^#!.*\b(ba)?sh\b' && scripts+=("$f") ;;
  esac
done
shellcheck "${scripts[@]}"
echo "lint: workflows and scripts are clean"
