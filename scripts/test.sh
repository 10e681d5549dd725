#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs uv when missing, syncs the
# workspace, starts Postgres and Redis (installing them from Debian packages when
# missing), then runs the suite on SQLite and again on Postgres, and stops the
# services it started.
# Extra arguments go to pytest (e.g. scripts/test.sh -k ingest).
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/_bootstrap.sh
eval "$(scripts/services.sh start)"
# Stop what this run started (a Postgres or Redis that was already running stays).
if [ -n "$SOPFLOW_SERVICES_STARTED" ]; then
  # shellcheck disable=SC2086  # the list is words on purpose
  trap 'scripts/services.sh stop $SOPFLOW_SERVICES_STARTED' EXIT
fi

echo "== lint =="
uv run ruff check .
uv run ruff format --check .
uv run lint-imports

# The two passes run side by side (each is one Python process, and the machine
# has at least two cores), each with its own Redis databases since tests flush
# them: 0–7 for SQLite, 8–15 for Postgres (tests offset from the URL's index).
# SOPFLOW_TEST_SERIAL=1 runs them one after the other instead.
logs="$(mktemp -d)"
redis_base="${SOPFLOW_TEST_REDIS_URL%/*}"
run_pass() {  # backend, redis db index
  # --durations: each pass lists its slowest tests, so CI's log shows where its time goes
  SOPFLOW_TEST_BACKEND="$1" SOPFLOW_TEST_REDIS_URL="$redis_base/$2" uv run --no-sync pytest --durations=25 "${@:3}"
}
if [ "${SOPFLOW_TEST_SERIAL:-}" = 1 ]; then
  echo "== suite on SQLite (+ real Redis) =="
  run_pass sqlite 0 "$@"
  echo "== suite on Postgres (+ real Redis) =="
  run_pass postgres 8 "$@"
  exit 0
fi
echo "== suite on SQLite and on Postgres (+ real Redis), side by side; logs in $logs =="
run_pass sqlite 0 "$@" >"$logs/sqlite.log" 2>&1 &
sqlite_pid=$!
run_pass postgres 8 "$@" >"$logs/postgres.log" 2>&1 &
postgres_pid=$!
sqlite_rc=0 postgres_rc=0
wait "$sqlite_pid" || sqlite_rc=$?
wait "$postgres_pid" || postgres_rc=$?
echo "== suite on SQLite (+ real Redis): exit $sqlite_rc =="
cat "$logs/sqlite.log"
echo "== suite on Postgres (+ real Redis): exit $postgres_rc =="
cat "$logs/postgres.log"
[ "$sqlite_rc" = 0 ] && [ "$postgres_rc" = 0 ]
