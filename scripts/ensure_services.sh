#!/usr/bin/env bash
# Make sure PostgreSQL and Redis answer for the test suite; start or install them when absent.
# DATABASE_URL / REDIS_URL, when set, name servers someone else runs: we only check them.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if [ -z "${DATABASE_URL:-}" ]; then
  if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    command -v pg_ctlcluster >/dev/null || bash "$here/install_system.sh" postgresql postgresql-client
    ver="$(ls /etc/postgresql | sort -n | tail -1)"
    pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
  fi
  pg_isready -h 127.0.0.1 -p 5432
  # Local trust auth is what this setup expects; say so plainly if it is not there.
  psql -h 127.0.0.1 -U postgres -d postgres -Atc "select 1" >/dev/null || {
    echo "PostgreSQL on 127.0.0.1:5432 does not accept user postgres without a password; set DATABASE_URL" >&2; exit 1; }
fi
if [ -z "${REDIS_URL:-}" ]; then
  if ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
    command -v redis-server >/dev/null || bash "$here/install_system.sh" redis-server
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no --dir /tmp
    for _ in $(seq 1 20); do (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null && break; sleep 0.5; done
  fi
fi
echo "services: PostgreSQL and Redis are up"
