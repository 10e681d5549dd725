"""Run time forward in a test, delivering what falls due on the way.

``run_due(api, until=...)`` drives a test app (``SOPFLOW_CLOCK=manual``, as the
``sopflow_app`` fixture makes it) through its public HTTP API only: it moves the
manual clock to each scheduled touch's due time in turn, up to ``until``, and
dispatches what is due at each stop (``POST /api/v1/clock/advance``, ``POST
/api/v1/touches/dispatch``), so a plugin's tests can check an SOP's delayed
steps without core's runner::

    from datetime import timedelta
    from sopflow_sdk.testing import run_due

    def test_the_follow_up_goes_out_a_day_later(api, fake_gateway):
        ...  # create and start the SOP, add the customer
        run_due(api, by=timedelta(days=1))
        assert len(fake_gateway.messages) == 2

Stopping at every due time (not jumping straight to ``until``) keeps a step
that waits for a reply, a quiet hour or a daily cap behaving as it would in
real time.  The jobs run inline (the test app has no broker); with the
``stub_broker`` fixture installed, join it after each call instead.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

#: Stops at most (a step that keeps re-scheduling itself would loop forever).
MAX_STOPS = 10_000


@attrs.frozen
class RunDue:
    """What ``run_due`` did: the clock at the end, the stops, the touches dispatched."""

    now: datetime
    stops: int
    dispatched: int


def _json(response: Any, what: str) -> Any:
    if response.status_code >= 300:
        raise AssertionError(f"run_due: {what} answered {response.status_code}: {response.text}")
    return response.json()


def _instant(text: str) -> datetime:
    when = datetime.fromisoformat(text)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _now(api: Any) -> datetime:
    return _instant(_json(api.get("/api/v1/clock"), "GET /api/v1/clock")["now"])


def _next_due(api: Any, until: datetime) -> datetime | None:
    """The earliest due time of a scheduled touch of the tenant, at or before ``until``."""
    earliest: datetime | None = None
    cursor: str | None = None
    before = (until + timedelta(microseconds=1)).isoformat()
    while True:
        params: dict[str, Any] = {"status": "scheduled", "due_before": before, "limit": 500}
        if cursor:
            params["cursor"] = cursor
        found = _json(api.get("/api/v1/touches", params=params), "GET /api/v1/touches")
        for item in found["items"]:
            due = _instant(item["due_at"])
            earliest = due if earliest is None or due < earliest else earliest
        cursor = found["next_cursor"]
        if not cursor:
            return earliest


def _dispatch(api: Any) -> int:
    total = 0
    for _ in range(MAX_STOPS):
        n = _json(api.post("/api/v1/touches/dispatch"), "POST /api/v1/touches/dispatch")["dispatched"]
        total += n
        if n == 0:
            return total
    raise AssertionError("run_due: dispatch did not settle; a step keeps re-scheduling itself")


def _advance(api: Any, to: datetime, now: datetime) -> datetime:
    seconds = (to - now).total_seconds()
    if seconds <= 0:
        return now
    body = _json(api.post("/api/v1/clock/advance", json={"seconds": seconds}), "POST /api/v1/clock/advance")
    return _instant(body["now"])


def run_due(api: Any, *, until: datetime | None = None, by: timedelta | None = None) -> RunDue:
    """Move the manual clock to ``until`` (or forward ``by``), stopping at each
    scheduled touch's due time on the way and dispatching what is due there.

    ``api`` is an authenticated client with the ``admin`` scope (the ``api``
    fixture); only its tenant's touches set the stops, though a dispatch
    delivers every tenant's due touches.  Returns a ``RunDue``."""
    if (until is None) == (by is None):
        raise TypeError("run_due: give exactly one of until= (a datetime) or by= (a timedelta)")
    now = _now(api)
    target = _instant(until.isoformat()) if until is not None else now + by  # type: ignore[operator]
    dispatched, stops = _dispatch(api), 0
    while stops < MAX_STOPS:
        due = _next_due(api, target)
        if due is None:
            break
        if due <= now and stops:  # dispatched at this time already, and it is still due
            raise AssertionError(f"run_due: a touch due at {due.isoformat()} is not being dispatched")
        now = _advance(api, due, now)
        stops += 1
        dispatched += _dispatch(api)
    else:
        raise AssertionError(f"run_due: more than {MAX_STOPS} stops before {target.isoformat()}")
    now = _advance(api, target, now)
    dispatched += _dispatch(api)
    return RunDue(now=now, stops=stops, dispatched=dispatched)
