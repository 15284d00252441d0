#!/usr/bin/env bash
# Installs, with apt, the Debian package of every program in .ci/test-programs
# that this machine lacks, without starting the services those packages ship
# (the caller starts what it needs, on the ports it wants). Fails loudly when a
# program is still missing afterwards: tests must never skip for want of one.
#   CI:     bash .ci/install.sh      (ci.yml, before every go test)
#   local:  make services            (.ci/services.sh calls it)
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
  echo "install: need root to run: $*" >&2; return 1; fi; }

# Debian keeps the PostgreSQL server programs off PATH, in its versioned bindir.
have() {
  command -v "$1" >/dev/null 2>&1 && return 0
  local f
  for f in /usr/lib/postgresql/*/bin/"$1"; do [ -x "$f" ] && return 0; done
  return 1
}

missing_programs=()
packages=()
while read -r program package _; do
  case "$program" in '' | '#'*) continue ;; esac
  [ "$package" = - ] && continue
  have "$program" && continue
  missing_programs+=("$program")
  case " ${packages[*]} " in *" $package "*) ;; *) packages+=("$package") ;; esac
done <.ci/test-programs

if [ "${#packages[@]}" -gt 0 ]; then
  echo "install: ${missing_programs[*]} missing; installing ${packages[*]} with apt"
  # policy-rc.d exit 101: packages do not start their services while installing.
  # A GitHub runner already serves 5432 and 6379 from service containers.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
    as_root chmod 755 "$policy"
    trap 'as_root rm -f "$policy"' EXIT
  fi
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi

for program in "${missing_programs[@]}"; do
  have "$program" || { echo "install: $program is still missing after installing ${packages[*]}" >&2; exit 1; }
done
echo "install: every program in .ci/test-programs is present"
