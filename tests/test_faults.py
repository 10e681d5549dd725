"""The fault-injection suite: real Redis and Postgres processes killed and
restarted under ingest and under dispatch (``bench/faults.py``).

Each scenario starts its own ``redis-server`` and Postgres cluster on free
ports, so it does not depend on the pass's backend: the suite runs once, on
the Postgres pass (``SOPFLOW_TEST_BACKEND=postgres``), where the Postgres
binaries are known to be installed.  Each asserts no lost touch, no duplicate
send, recovery within a few scheduler ticks after the dependency is back, and
a bounded log.
"""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("SOPFLOW_FAULT_CUSTOMERS", "30")

#: ticks from the dependency's return to the last delivery, at most
RECOVERY_TICKS = 3
#: bytes logged during the outage and the recovery, at most (one line per failure class)
LOG_BYTES = 20_000

if os.environ.get("SOPFLOW_TEST_BACKEND") == "postgres":

    @pytest.mark.postgres
    @pytest.mark.redis
    @pytest.mark.slow
    @pytest.mark.parametrize(
        "scenario",
        [
            "redis-empty-dispatch",
            "redis-aof-dispatch",
            "redis-ingest",
            "postgres-fast-ingest",
            "postgres-kill-ingest",
            "postgres-fast-dispatch",
            "postgres-kill-dispatch",
        ],
    )
    def test_an_outage_loses_nothing_and_sends_nothing_twice(scenario: str) -> None:
        from bench import faults

        result = faults.SCENARIOS[scenario]()
        assert result["lost"] == 0, result
        assert result["duplicates"] == 0, result
        assert result["enrolled"] == faults.CUSTOMERS, result
        assert result["recovery_ticks"] <= RECOVERY_TICKS, result
        assert result["log_bytes"] <= LOG_BYTES, result
        if "ingest" in scenario and scenario.startswith("postgres"):
            assert result["status"] == 503 and result["retry_after"], result  # nothing stored: retry
        if scenario == "redis-ingest":
            assert result["status"] == 200, result  # stored: a success, evaluated by the sweep
