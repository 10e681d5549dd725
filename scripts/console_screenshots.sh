#!/usr/bin/env bash
# Retake the operator console's screenshots in docs/console/ (shown by docs/console.md):
# the browser tests save each page they visit.  Chinese labels need a CJK font in
# the headless chromium: Debian's fonts-wqy-microhei, installed here when missing
# (the tests themselves read text from the page, not pixels, so they need no font).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_bootstrap.sh
if ! fc-list 2>/dev/null | grep -qi "wenquanyi\|wqy" && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  apt-get install -y -q fonts-wqy-microhei >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null && apt-get install -y -q fonts-wqy-microhei >/dev/null; }
fi
CONSOLE_SCREENSHOTS=docs/console uv run pytest tests/test_console_browser.py -q
