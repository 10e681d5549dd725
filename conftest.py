"""Suite-wide collection rule for the two passes of ``scripts/test.sh``, which run
side by side: the Postgres pass leaves out the tests marked ``sqlite_pass`` (those
that do not touch the pass's back-end, and the SQLite variants of tests run on
both), since the SQLite pass runs them.  Deselected, not skipped: nothing is
missing, it runs once instead of twice."""

from __future__ import annotations

import os
from typing import Any


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    """Deselect ``sqlite_pass`` tests when ``SOPFLOW_TEST_BACKEND`` is postgres."""
    if os.environ.get("SOPFLOW_TEST_BACKEND") != "postgres":
        return
    once = [item for item in items if item.get_closest_marker("sqlite_pass")]
    if once:
        config.hook.pytest_deselected(items=once)
        items[:] = [item for item in items if not item.get_closest_marker("sqlite_pass")]
