#!/usr/bin/env bash
# Makes sure PostgreSQL and Redis run on 127.0.0.1 (installing them, and every
# other program the tests start, with .ci/install.sh when missing) and fails
# loudly when they cannot be brought up: tests must never silently skip for
# want of a service.
set -euo pipefail

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
  echo "services: need root to run: $*" >&2; return 1; fi; }

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
redis_up() { [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ]; }

# Programs first (PostgreSQL, Redis, and whatever else the tests start): the
# same list and script ci.yml uses.
had_cluster=0
compgen -G '/etc/postgresql/*/main' >/dev/null && had_cluster=1
bash "$(dirname "$0")/install.sh"
installed_pg=0
[ "$had_cluster" = 0 ] && compgen -G '/etc/postgresql/*/main' >/dev/null && installed_pg=1

if [ "$installed_pg" = 1 ]; then
  # A fresh Debian cluster wants passwords on TCP; the kit's local defaults use
  # trust on loopback, as on the development machines.
  hbas=(/etc/postgresql/*/main/pg_hba.conf)
  hba=${hbas[0]}
  as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
fi

if ! pg_up; then
  echo "services: starting PostgreSQL"
  version=$(find /etc/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -n1)
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
fi
if ! redis_up; then
  echo "services: starting Redis"
  as_root mkdir -p /var/lib/redis /var/log/redis
  as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
fi

for _ in $(seq 60); do pg_up && redis_up && break; sleep 0.5; done
pg_up || { echo "services: PostgreSQL is not answering on 127.0.0.1:5432" >&2; exit 1; }
redis_up || { echo "services: Redis is not answering on 127.0.0.1:6379" >&2; exit 1; }

# The suite runs packages in parallel, each with its pools, and the api bench
# opens three servers' pools: Debian's default of 100 connections is too few.
want_conns=300
have_conns=$(psql -h 127.0.0.1 -U postgres -Atc 'SHOW max_connections' 2>/dev/null || echo 0)
if [ "$have_conns" -lt "$want_conns" ]; then
  echo "services: raising PostgreSQL max_connections from $have_conns to $want_conns (restart)"
  psql -h 127.0.0.1 -U postgres -qc "ALTER SYSTEM SET max_connections = $want_conns"
  version=$(find /etc/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -n1)
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main restart
  for _ in $(seq 60); do pg_up && break; sleep 0.5; done
  pg_up || { echo "services: PostgreSQL did not come back after the restart" >&2; exit 1; }
fi
echo "services: PostgreSQL and Redis are up"
