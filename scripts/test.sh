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
  # The Prometheus package starts a system service on :9090; the tests run their own.
  if command -v systemctl >/dev/null 2>&1; then
    systemctl stop prometheus prometheus-node-exporter >/dev/null 2>&1 || true
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
}

install_components
start_components

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy --all-targets --all-features -- -D warnings"
cargo clippy --all-targets --all-features -- -D warnings

for features in "" otlp prometheus http tower axum serde; do
  log "cargo clippy --no-default-features --features '$features' (each feature on its own)"
  cargo clippy --quiet --lib --no-default-features --features "$features" -- -D warnings
done

log "cargo test --all-features"
cargo test --all-features

log "cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --all-features --quiet

log "all checks passed"
