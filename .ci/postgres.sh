#!/usr/bin/env bash
# Start a throw-away PostgreSQL server on localhost for the storage test (tests/test_tune_postgres.py) and export
# PTBENCH_TEST_POSTGRES_URL. Sourced by .ci/run. Installs Debian's `postgresql` package if no server is present
# (Debian 12: PostgreSQL 15). The cluster lives in a temporary folder and is stopped on exit.
set -euo pipefail
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q && apt-get install -y -q postgresql
fi
PG_BIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
PG_DIR="$(mktemp -d /tmp/ptbench-pg.XXXXXX)"
PG_PORT="${PTBENCH_TEST_POSTGRES_PORT:-54329}"
as_pg() {  # initdb refuses to run as root: use the package's postgres user then
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
[ "$(id -u)" = 0 ] && chown postgres "$PG_DIR"
as_pg "$PG_BIN/initdb" -D "$PG_DIR/data" -A trust -U postgres >/dev/null
as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w \
    -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=localhost" start >/dev/null
as_pg "$PG_BIN/createdb" -h localhost -p "$PG_PORT" -U postgres ptbench_test
export PTBENCH_TEST_POSTGRES_URL="postgresql://postgres@localhost:$PG_PORT/ptbench_test"
stop_postgres() { as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast stop >/dev/null || true; }
trap stop_postgres EXIT
