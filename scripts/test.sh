#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs uv when missing, syncs the
# workspace, starts Postgres and Redis (installing them from Debian packages when
# missing), then runs the suite on SQLite and again on Postgres.
# Extra arguments go to pytest (e.g. scripts/test.sh -k ingest).
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/_bootstrap.sh
eval "$(scripts/services.sh start)"

echo "== lint =="
uv run ruff check .
uv run ruff format --check .
uv run lint-imports

echo "== suite on SQLite (+ real Redis) =="
SOPFLOW_TEST_BACKEND=sqlite uv run pytest "$@"

echo "== suite on Postgres (+ real Redis) =="
SOPFLOW_TEST_BACKEND=postgres uv run pytest "$@"
