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

echo "== suite on SQLite (+ real Redis) =="
SOPFLOW_TEST_BACKEND=sqlite uv run pytest "$@"

echo "== suite on Postgres (+ real Redis) =="
SOPFLOW_TEST_BACKEND=postgres uv run pytest "$@"
