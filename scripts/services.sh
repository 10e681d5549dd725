#!/usr/bin/env bash
# Install (from Debian packages, when missing) and start a throwaway Postgres and
# Redis on 127.0.0.1 for the test suite and the benchmarks.  Prints the export
# lines for SOPFLOW_TEST_POSTGRES_URL and SOPFLOW_TEST_REDIS_URL.
# It also prints SOPFLOW_SERVICES_STARTED: the ones this call started (not those
# already running), so a caller can stop exactly what it started.
# Usage: eval "$(scripts/services.sh start)"   |   scripts/services.sh stop [pg] [redis]
set -euo pipefail
RUN_DIR="${SOPFLOW_SERVICES_DIR:-/tmp/sopflow-services}"
PG_PORT="${SOPFLOW_TEST_PG_PORT:-55432}"
REDIS_PORT="${SOPFLOW_TEST_REDIS_PORT:-56379}"

need_apt() {
  local missing=()
  pg_bin >/dev/null 2>&1 || missing+=(postgresql)
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]} from Debian packages" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq "${missing[@]}" >&2
  fi
}

pg_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && { echo "$d"; return 0; }
  done
  return 1
}

start() {
  need_apt
  mkdir -p "$RUN_DIR"
  local bin; bin="$(pg_bin)"
  local owner="postgres"
  id postgres >/dev/null 2>&1 || owner="$(id -un)"
  if [ ! -f "$RUN_DIR/pg/PG_VERSION" ]; then
    mkdir -p "$RUN_DIR/pg"; chown "$owner" "$RUN_DIR" "$RUN_DIR/pg"
    run_as "$owner" "$bin/initdb" -D "$RUN_DIR/pg" -U sopflow --auth=trust -E UTF8 >/dev/null
  fi
  local started=()
  if ! run_as "$owner" "$bin/pg_ctl" -D "$RUN_DIR/pg" status >/dev/null 2>&1; then
    started+=(pg)
    run_as "$owner" "$bin/pg_ctl" -D "$RUN_DIR/pg" -l "$RUN_DIR/pg.log" -w \
      -o "-h 127.0.0.1 -p $PG_PORT -k $RUN_DIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" start >/dev/null
  fi
  if ! redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1; then
    started+=(redis)
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
      --daemonize yes --pidfile "$RUN_DIR/redis.pid" --logfile "$RUN_DIR/redis.log" >/dev/null
    for _ in $(seq 50); do redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
  fi
  echo "export SOPFLOW_TEST_POSTGRES_URL=postgresql+psycopg://sopflow@127.0.0.1:$PG_PORT/postgres"
  echo "export SOPFLOW_TEST_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0"
  echo "export SOPFLOW_SERVICES_STARTED='${started[*]:-}'"
}

run_as() {
  local user="$1"; shift
  if [ "$user" = "$(id -un)" ]; then "$@"; else su "$user" -s /bin/sh -c "$(printf '%q ' "$@")"; fi
}

stop() {
  local which=" ${*:-pg redis} "
  local bin; bin="$(pg_bin)" || true
  local owner="postgres"; id postgres >/dev/null 2>&1 || owner="$(id -un)"
  if [[ "$which" == *" pg "* ]]; then
    [ -n "${bin:-}" ] && [ -f "$RUN_DIR/pg/postmaster.pid" ] && run_as "$owner" "$bin/pg_ctl" -D "$RUN_DIR/pg" -m fast stop >/dev/null || true
  fi
  if [[ "$which" == *" redis "* ]]; then
    [ -f "$RUN_DIR/redis.pid" ] && kill "$(cat "$RUN_DIR/redis.pid")" 2>/dev/null || true
  fi
}

case "${1:-start}" in
  start) start ;;
  stop) shift; stop "$@" ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
