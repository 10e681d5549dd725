#!/usr/bin/env bash
# The README's first command, from a fresh machine: installs uv when missing,
# syncs the workspace, then runs `sopflow demo` — sopflow on embedded defaults
# (SQLite in a temp dir, no broker, manual clock) against a fake WeCom, a few
# hundred simulated customers over six weeks, and a report checked against the
# database. The keyword scene reads WeCom's conversation archive through a C fake
# of its Finance SDK, compiled with cc on the first run (_bootstrap.sh installs gcc).
# Extra arguments go to `sopflow demo` (e.g. --seed 3 --report r.md).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_bootstrap.sh
exec uv run sopflow demo "$@"
