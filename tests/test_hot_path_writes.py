"""What the delivery hot path writes: only the touch columns a change altered,
the batch's ``touch.sent`` events in one statement with each event announced
under its own id, and on SQLite datetimes stored as the same text SQLAlchemy
would store (comparisons in SQL depend on it)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite

from tests.sop_support import add_customer, create_sop, log_channel, touches

SHANGHAI = ZoneInfo("Asia/Shanghai")
DUE = datetime(2026, 3, 3, 10, 0, tzinfo=SHANGHAI)


@pytest.fixture
def statements(sopflow_app: Any) -> Any:
    """Every statement the engine runs, with its parameter sets."""
    seen: list[tuple[str, Any, bool]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        seen.append((statement, parameters, many))

    sa.event.listen(sopflow_app.engine, "before_cursor_execute", record)
    yield seen
    sa.event.remove(sopflow_app.engine, "before_cursor_execute", record)


def _due_batch(api: Any, n: int) -> list[int]:
    text = "hi {{ customer.display_name }}"
    step = {"type": "send", "channel": "log", "touchpoint": "private_chat", "text": text}
    create_sop(
        api,
        "n",
        {
            "kind": "nurture",
            "target": {"rule": {"tags": {"any_of": ["n"]}}},
            "steps": [{"day": 1, "at": "10:00", "actions": [step]}],
        },
    )
    return [add_customer(api, f"hp-{i}", tags=["n"]) for i in range(n)]


def _touch_updates(seen: list[tuple[str, Any, bool]]) -> list[set[str]]:
    columns = []
    for statement, _params, _many in seen:
        match = re.match(r"UPDATE touches SET (.*) WHERE", statement, re.S)
        if match:
            columns.append({c.split("=")[0].strip() for c in match.group(1).split(",")})
    return columns


def test_a_touch_update_sets_only_the_columns_that_changed(sopflow_app, api, manual_clock, statements):
    from sopflow.engine.delivery.dispatch import run_until_idle

    log_channel(sopflow_app, api)
    _due_batch(api, 4)
    manual_clock.set(DUE)
    statements.clear()
    assert run_until_idle(sopflow_app) == 4
    updates = _touch_updates(statements)
    assert updates, "the drain wrote its touches"
    # the due time never changes on a send, so no statement names it (its index is
    # left alone), and no statement writes a column no touch of it changed
    assert all("due_at" not in cols and "deferrals" not in cols for cols in updates)
    assert any({"status", "sent_at", "outcome"} <= cols for cols in updates)  # the record
    assert [t.status for t in touches(sopflow_app)] == ["sent"] * 4


def test_a_change_that_changes_nothing_writes_nothing(sopflow_app, api, manual_clock, statements):
    from sopflow.engine.delivery import touch_rows

    _due_batch(api, 1)
    with sopflow_app.tx() as s:
        [row] = s.execute(touch_rows.select_rows())
        statements.clear()
        touch_rows.write(s, [touch_rows.change_of(row)])
    assert _touch_updates(statements) == []


def test_a_batchs_sent_events_are_one_insert_each_announced_under_its_own_id(
    sopflow_app, api, manual_clock, statements, monkeypatch
):
    from sopflow.engine.delivery import outcomes
    from sopflow.engine.delivery.dispatch import run_until_idle
    from sopflow.models import Event

    log_channel(sopflow_app, api)
    _due_batch(api, 5)
    announced: list[Any] = []
    real = outcomes.collect
    monkeypatch.setattr(outcomes, "collect", lambda event: (announced.append(event), real(event)))
    manual_clock.set(DUE)
    statements.clear()
    run_until_idle(sopflow_app)
    inserts = [s for s, _p, _m in statements if s.startswith("INSERT INTO events")]
    assert len(inserts) == 1
    with sopflow_app.tx() as s:
        query = sa.select(Event).where(Event.type == "touch.sent")
        stored = {e.id: e.payload["touch_id"] for e in s.scalars(query)}
    assert len(stored) == 5
    # each announced id is the row holding that touch's event, not a neighbour's
    assert {e.id: e.payload["touch_id"] for e in announced} == stored


_ZONES = st.sampled_from([UTC, SHANGHAI, timezone(timedelta(hours=-23, minutes=-59))])
_AWARE = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=_ZONES)


@given(_AWARE)
def test_sqlite_datetimes_are_stored_as_sqlalchemys_own_text_and_read_back_equal(value: datetime) -> None:
    from sopflow.models.types import UTCDateTime

    dialect = sqlite.dialect()
    ours = UTCDateTime().dialect_impl(dialect)
    theirs = sa.DateTime().dialect_impl(dialect).bind_processor(dialect)
    text = ours.bind_processor(dialect)(value)
    assert text == theirs(value.astimezone(UTC).replace(tzinfo=None))
    back = ours.result_processor(dialect, None)(text)
    # the same instant (compared in UTC: across zones Python calls a time in a DST fold unequal)
    assert back == value.astimezone(UTC) and back.tzinfo is UTC


def test_a_naive_datetime_is_refused_on_sqlite_too() -> None:
    from sopflow.models.types import UTCDateTime

    dialect = sqlite.dialect()
    with pytest.raises(ValueError, match="naive datetime"):
        UTCDateTime().dialect_impl(dialect).bind_processor(dialect)(datetime(2026, 1, 1))
