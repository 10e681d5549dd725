#!/usr/bin/env bash
# The main job on embedded defaults, from a fresh machine: installs uv when
# missing, syncs the workspace, then runs `sopflow up` (API + worker +
# scheduler in one process, SQLite file, in-memory broker).
# Extra arguments go to `sopflow up` (e.g. scripts/up.sh --port 8080).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_bootstrap.sh
exec uv run sopflow up "$@"
