#!/bin/sh
# PostgreSQL from Debian's postgresql-15 package, started the way the official image starts it
# (compose.local.yaml): a first start creates the cluster with POSTGRES_USER as its superuser,
# POSTGRES_PASSWORD for connections over the network, and the database POSTGRES_DB.
set -eu
bin=/usr/lib/postgresql/15/bin
data="${PGDATA:-/var/lib/postgresql/data}"
mkdir -p "$data" /run/postgresql
chown postgres:postgres "$data" /run/postgresql
chmod 700 "$data"
if [ ! -s "$data/PG_VERSION" ]; then
  pwfile="$(mktemp)"
  printf %s "$POSTGRES_PASSWORD" > "$pwfile"
  chown postgres "$pwfile"
  runuser -u postgres -- "$bin/initdb" -D "$data" -U "$POSTGRES_USER" --pwfile="$pwfile" -E UTF8 \
    --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >> "$data/pg_hba.conf"
  echo "CREATE DATABASE \"$POSTGRES_DB\" OWNER \"$POSTGRES_USER\";" \
    | runuser -u postgres -- "$bin/postgres" --single -D "$data" postgres >/dev/null
  echo "postgres: cluster created in $data"
fi
exec runuser -u postgres -- "$bin/postgres" -D "$data" -c listen_addresses='*'
