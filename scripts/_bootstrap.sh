# Sourced by the other scripts: installs uv when missing and syncs the workspace.
if ! command -v uv >/dev/null 2>&1; then
  python3 -m pip install --quiet uv || pip install --quiet uv
  export PATH="$HOME/.local/bin:$PATH"
fi
uv sync --quiet --all-packages
