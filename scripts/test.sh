#!/usr/bin/env bash
# The whole test suite, on a fresh machine or this one:
#   1. installs the real components the tests need when they are missing,
#   2. starts them on loopback,
#   3. runs formatting and lint checks and every test (unit, integration, doc, examples),
#   4. stops what it started.
set -euo pipefail

cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

log() { printf '\n==> %s\n' "$*"; }

PIDS=()
cleanup() {
  for pid in "${PIDS[@]:-}"; do
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  done
  if [ -n "${PGDATA_DIR:-}" ] && [ -f "$PGDATA_DIR/postmaster.pid" ]; then
    as_postgres "$(pg_bin)/pg_ctl" -D "$PGDATA_DIR" stop -m immediate >/dev/null 2>&1 || true
  fi
  [ -n "${PGDIR:-}" ] && rm -rf "$PGDIR"
  [ -n "${WORK:-}" ] && rm -rf "$WORK"
}
trap cleanup EXIT

APT_UPDATED=0
apt_install() {
  # apt-get update runs once, and only when something is missing.
  if [ "$APT_UPDATED" = 0 ]; then
    log "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    APT_UPDATED=1
  fi
  log "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

rotel_agent() {
  python3 -c 'import os, rotel; print(os.path.join(os.path.dirname(rotel.__file__), "rotel-agent"))' 2>/dev/null
}

# The newest PostgreSQL server's bin directory (Debian keeps initdb and pg_ctl there, off PATH).
pg_bin() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1
}

# PostgreSQL refuses to run as root: as root, its commands run as the package's `postgres` user.
as_postgres() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

install_components() {
  # rotel: a real OpenTelemetry collector, shipped inside its PyPI package.
  if [ ! -x "$(rotel_agent)" ]; then
    log "pip install rotel"
    python3 -m pip install --quiet --disable-pip-version-check rotel
  fi
  # Prometheus server and promtool.
  if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
    apt_install prometheus
  fi
  # PostgreSQL (the sqlx adapter's tests) and Redis (the redis adapter's).
  if [ ! -x "$(pg_bin)/initdb" ]; then
    apt_install postgresql
  fi
  if ! command -v redis-server >/dev/null; then
    apt_install redis-server
  fi
  # stunnel: the TLS-terminating proxy the TLS tests put in front of rotel (they start it).
  if ! command -v stunnel4 >/dev/null && ! command -v stunnel >/dev/null; then
    apt_install stunnel4
  fi
  # The packages start system services on :9090, :5432 and :6379; the tests run their own.
  if command -v systemctl >/dev/null 2>&1; then
    systemctl stop prometheus prometheus-node-exporter postgresql redis-server >/dev/null 2>&1 || true
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

start_components() {
  WORK="$(mktemp -d -t unitel-test.XXXXXX)"
  # rotel, on loopback, printing everything it receives to a file the tests read.
  local grpc http agent
  grpc="$(free_port)"
  http="$(free_port)"
  agent="$(rotel_agent)"
  log "starting rotel on 127.0.0.1:$grpc (grpc) and 127.0.0.1:$http (http)"
  "$agent" start \
    --otlp-grpc-endpoint "127.0.0.1:$grpc" --otlp-http-endpoint "127.0.0.1:$http" \
    --exporter blackhole \
    --debug-log traces --debug-log metrics --debug-log logs --debug-log-verbosity detailed \
    --pid-file "$WORK/rotel.pid" >"$WORK/rotel.log" 2>&1 &
  PIDS+=("$!")
  for _ in $(seq 1 100); do
    grep -q "Starting Rotel" "$WORK/rotel.log" 2>/dev/null && break
    sleep 0.1
  done
  grep -q "Starting Rotel" "$WORK/rotel.log" || { cat "$WORK/rotel.log"; echo "rotel did not start" >&2; exit 1; }
  export UNITEL_TEST_ROTEL_GRPC="127.0.0.1:$grpc"
  export UNITEL_TEST_ROTEL_HTTP="127.0.0.1:$http"
  export UNITEL_TEST_ROTEL_LOG="$WORK/rotel.log"
  export UNITEL_TEST_PROMETHEUS="$(command -v prometheus)"
  export UNITEL_TEST_PROMTOOL="$(command -v promtool)"
  UNITEL_TEST_STUNNEL="$(command -v stunnel4 || command -v stunnel)"
  export UNITEL_TEST_STUNNEL

  # PostgreSQL: a throwaway cluster in a temporary directory (no system service), password
  # authentication on loopback only, so the tests can check that the password never leaks.
  local pg_port pg_password="unitel-pg-secret"
  pg_port="$(free_port)"
  PGDIR="$(mktemp -d -t unitel-pg.XXXXXX)"
  PGDATA_DIR="$PGDIR/data"
  printf '%s\n' "$pg_password" >"$PGDIR/password"
  [ "$(id -u)" = 0 ] && chown -R postgres "$PGDIR"
  log "starting PostgreSQL on 127.0.0.1:$pg_port"
  as_postgres "$(pg_bin)/initdb" -D "$PGDATA_DIR" -U unitel --pwfile="$PGDIR/password" \
    -A scram-sha-256 --no-sync >"$PGDIR/initdb.log" 2>&1 \
    || { cat "$PGDIR/initdb.log"; echo "initdb failed" >&2; exit 1; }
  as_postgres "$(pg_bin)/pg_ctl" -D "$PGDATA_DIR" -w -t 60 -l "$PGDIR/postgres.log" \
    -o "-p $pg_port -k $PGDIR -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" \
    start >/dev/null || { cat "$PGDIR/postgres.log"; echo "PostgreSQL did not start" >&2; exit 1; }
  PGPASSWORD="$pg_password" "$(pg_bin)/psql" -q -h 127.0.0.1 -p "$pg_port" -U unitel -d postgres \
    -c "CREATE DATABASE unitel_test" >/dev/null
  export UNITEL_TEST_POSTGRES_URL="postgres://unitel:$pg_password@127.0.0.1:$pg_port/unitel_test"

  # Redis, without persistence.
  local redis_port
  redis_port="$(free_port)"
  log "starting redis-server on 127.0.0.1:$redis_port"
  redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$WORK" >"$WORK/redis.log" 2>&1 &
  PIDS+=("$!")
  for _ in $(seq 1 100); do
    redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  redis-cli -p "$redis_port" ping >/dev/null || { cat "$WORK/redis.log"; echo "redis did not start" >&2; exit 1; }
  export UNITEL_TEST_REDIS_URL="redis://127.0.0.1:$redis_port/"
}

install_components
start_components

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy --all-targets --all-features -- -D warnings"
cargo clippy --all-targets --all-features -- -D warnings

for features in "" otlp prometheus http signal tower axum serde reqwest sqlx redis cli; do
  log "cargo clippy --no-default-features --features '$features' (each feature on its own)"
  cargo clippy --quiet --lib --bins --no-default-features --features "$features" -- -D warnings
done

log "default features compile none of the adapters' or the CLI's dependencies"
adapter_deps="$(cargo tree -e normal,build --prefix none -f '{p}' | grep -E '^(reqwest-middleware|sqlx|redis|libsqlite3-sys|clap) ' | sort -u || true)"
if [ -n "$adapter_deps" ]; then
  echo "a service with default features would compile: $adapter_deps" >&2
  exit 1
fi

log "cargo test --all-features"
cargo test --all-features

log "cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --all-features --quiet

log "all checks passed"
