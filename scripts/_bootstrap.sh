# Sourced by the other scripts: installs uv when missing and syncs the workspace.
if ! command -v uv >/dev/null 2>&1; then
  python3 -m pip install --quiet uv || pip install --quiet uv
  export PATH="$HOME/.local/bin:$PATH"
fi
# Compiled bytecode up front: with PYTHONDONTWRITEBYTECODE set (common in containers) every
# `sopflow` process and test subprocess would otherwise recompile the whole stack on start.
UV_COMPILE_BYTECODE=1 uv sync --quiet --all-packages
uv run --no-sync python -m compileall -q core sdk plugins examples >/dev/null
# The hosted-form and console browser tests drive Debian's headless chromium (no browser download).
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  apt-get install -y -q chromium >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }
fi
# The WeCom archive tests compile a C fake of WeCom's Finance SDK with the system compiler.
if ! command -v cc >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  apt-get install -y -q gcc libc6-dev >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null && apt-get install -y -q gcc libc6-dev >/dev/null; }
fi
