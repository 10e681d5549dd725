#!/usr/bin/env bash
# The main job on embedded defaults, from a fresh machine: installs uv when
# missing, syncs the workspace, then runs `sopflow up` (API + worker +
# scheduler in one process, SQLite file, in-memory broker).
# Extra arguments go to `sopflow up` (e.g. scripts/up.sh --port 8080).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v uv >/dev/null 2>&1; then
  python3 -m pip install --quiet uv || pip install --quiet uv
  export PATH="$HOME/.local/bin:$PATH"
fi
uv sync --quiet --all-packages
exec uv run sopflow up "$@"
