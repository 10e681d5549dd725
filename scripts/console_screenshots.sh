#!/usr/bin/env bash
# Retake the operator console's screenshots in docs/console/ (shown by docs/console.md):
# the browser tests save each page they visit.  Chinese labels need a CJK font in
# the headless chromium (Debian: apt-get install fonts-wqy-microhei).
set -euo pipefail
cd "$(dirname "$0")/.."
CONSOLE_SCREENSHOTS=docs/console uv run pytest tests/test_console_browser.py -q
