"""The states of a touch and the one table of moves between them
(``sopflow.models.touch_status``): the table refuses every move it does not
list, the delivery path checks each move it writes, and the real flows make
only moves the table lists."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from sopflow.models.touch_status import (
    CANCELLABLE,
    DONE,
    INITIAL,
    OPEN,
    OUTCOMES,
    TRANSITIONS,
    IllegalTouchMove,
    TouchStatus,
    can_move,
    check_initial,
    check_move,
    check_moves,
)

from tests.sop_support import add_customer, create_sop, run_days, send, tag, touches

SHANGHAI = ZoneInfo("Asia/Shanghai")
STATES = list(TouchStatus)
state = st.sampled_from(STATES)
#: any string a status column or a bug might hold, the real states among them
anything = st.one_of(state, st.sampled_from(STATES).map(str), st.text(max_size=12))


def test_the_table_covers_every_state_and_only_states():
    assert set(TRANSITIONS) == set(STATES)
    for targets in TRANSITIONS.values():
        assert targets <= set(STATES)
    assert set(STATES) >= INITIAL and set(OPEN) | set(DONE) | set(CANCELLABLE) | OUTCOMES <= set(STATES)


def test_sent_failed_and_skipped_are_final():
    for final in (TouchStatus.SENT, TouchStatus.FAILED, TouchStatus.SKIPPED):
        assert TRANSITIONS[final] == frozenset()


def test_every_outcome_of_a_call_can_be_recorded_on_a_touch_being_sent():
    assert TRANSITIONS[TouchStatus.SENDING] >= OUTCOMES


def test_the_values_are_what_the_status_column_holds():
    assert [str(s) for s in STATES] == [
        "scheduled",
        "claimed",
        "sending",
        "pending",
        "sent",
        "failed",
        "skipped",
        "cancelled",
        "review",
    ]
    assert TouchStatus("sent") is TouchStatus.SENT and TouchStatus.SENT == "sent"


@given(old=anything, new=anything)
def test_a_move_is_allowed_exactly_when_the_table_lists_it(old: str, new: str):
    listed = old in TRANSITIONS and new in TRANSITIONS[old]
    assert can_move(old, new) is listed
    if listed:
        assert check_move(old, new) == new
        assert isinstance(check_move(old, new), TouchStatus)
    else:
        with pytest.raises(IllegalTouchMove) as caught:
            check_move(old, new, touch_id=7)
        assert repr(str(old)) in str(caught.value) and repr(str(new)) in str(caught.value)
        assert "touch 7" in str(caught.value)
        assert (caught.value.old, caught.value.new, caught.value.touch_id) == (old, new, 7)


@given(olds=st.lists(state, min_size=1, max_size=4), new=state)
def test_a_set_based_move_needs_every_source_state_to_allow_it(olds: list[TouchStatus], new: TouchStatus):
    if all(new in TRANSITIONS[o] for o in olds):
        assert check_moves(olds, new) is new
    else:
        with pytest.raises(IllegalTouchMove):
            check_moves(olds, new)


@given(status=anything)
def test_a_new_touch_starts_scheduled_or_skipped(status: str):
    if status in ("scheduled", "skipped"):
        assert check_initial(status) == status
    else:
        with pytest.raises(IllegalTouchMove, match="new touch"):
            check_initial(status)


def test_an_illegal_move_names_both_states_and_what_is_allowed():
    with pytest.raises(IllegalTouchMove) as caught:
        check_move(TouchStatus.SENT, TouchStatus.SCHEDULED, touch_id=42)
    message = str(caught.value)
    assert message.startswith("touch 42 may not move from 'sent' to 'scheduled'")
    assert "final" in message
    with pytest.raises(IllegalTouchMove, match="from 'pending': failed, scheduled, sent"):
        check_move("pending", "claimed")


@pytest.fixture
def one_sent_touch(api: Any, sopflow_app: Any, manual_clock: Any) -> Any:
    manual_clock.set(datetime(2026, 3, 2, 9, 0, tzinfo=SHANGHAI))
    create_sop(
        api,
        "welcome",
        {
            "kind": "nurture",
            "target": {"rule": {"tags": {"any_of": ["new"]}}},
            "steps": [{"day": 0, "at": "10:00", "actions": [send("hi")]}],
        },
    )
    add_customer(api, "ts-1", tags=["new"])
    run_days(sopflow_app, manual_clock, 1)
    [touch] = touches(sopflow_app)
    assert touch.status == "sent"
    return touch


def test_the_delivery_path_refuses_an_illegal_move_and_writes_nothing(
    sopflow_app, one_sent_touch, illegal_touch_moves
):
    from sopflow.engine.delivery import touch_rows

    before = one_sent_touch
    with pytest.raises(IllegalTouchMove) as caught, sopflow_app.tx() as s:
        [row] = s.execute(touch_rows.select_rows(touch_rows.TOUCHES.c.id == before.id)).all()
        change = touch_rows.change_of(row)
        change["status"] = TouchStatus.SCHEDULED  # a sent touch sent again: never
        change["due_at"] = sopflow_app.now() + timedelta(hours=1)
        touch_rows.write(s, [change])
    assert f"touch {before.id} may not move from 'sent' to 'scheduled'" in str(caught.value)
    [after] = touches(sopflow_app)
    assert (after.status, after.due_at, after.sent_at) == ("sent", before.due_at, before.sent_at)
    assert len(illegal_touch_moves) == 1
    illegal_touch_moves.clear()  # provoked on purpose


def test_a_legal_move_is_written(sopflow_app, one_sent_touch):
    """The check sits on the write: a move the table lists goes through unchanged."""
    from sopflow.engine.delivery import touch_rows

    with sopflow_app.tx() as s:
        s.execute(sa.update(touch_rows.TOUCHES).values(status="pending"))
        [row] = s.execute(touch_rows.select_rows(touch_rows.TOUCHES.c.id == one_sent_touch.id)).all()
        change = touch_rows.change_of(row)
        change["status"] = TouchStatus.FAILED
        touch_rows.write(s, [change])
    assert touches(sopflow_app)[0].status == "failed"


def test_the_real_flows_move_touches_only_along_the_table(api, sopflow_app, manual_clock, monkeypatch):
    """An SOP with a reply wait, a daily-cap deferral and an early end: every
    move the delivery path writes is in the table, and the path does write the
    moves that matter (so the check is really on it)."""
    from sopflow.engine.delivery import touch_rows

    moves: set[tuple[str, str]] = set()
    write = touch_rows.write

    def recording(session: Any, changes: Any) -> None:
        moves.update((str(c["was"]), str(c["status"])) for c in changes)
        write(session, changes)

    monkeypatch.setattr(touch_rows, "write", recording)
    manual_clock.set(datetime(2026, 3, 2, 9, 0, tzinfo=SHANGHAI))
    create_sop(
        api,
        "flow",
        {
            "kind": "new_customer",
            "target": {},
            "early_end": {"tags": {"any_of": ["bought"]}},
            "steps": [
                {
                    "delay": "1h",
                    "actions": [send("how was it?")],
                    "wait_for_reply": {"timeout": "1d", "on_timeout": "skip"},
                },
                # waits for the reply, then skipped (on moments: the daily cap does not hold it back)
                {"delay": "2h", "actions": [send("follow-up", "moments")]},
                {"delay": "3h", "actions": [send("again")]},  # the daily cap defers it to tomorrow
            ],
        },
    )
    follows = add_customer(api, "flow-1")
    ended = add_customer(api, "flow-2")
    tag(api, ended, "bought")  # ends before anything is due: its touches are cancelled
    run_days(sopflow_app, manual_clock, 5)

    for old, new in moves:
        assert can_move(old, new), (old, new)
    assert {("scheduled", "claimed"), ("claimed", "sending"), ("sending", "sent")} <= moves
    assert {("claimed", "scheduled"), ("claimed", "skipped")} <= moves  # the reply gate waits, then skips
    assert ("scheduled", "scheduled") in moves  # the daily cap defers
    assert [t.status for t in touches(sopflow_app, customer_id=follows)] == ["sent", "skipped", "sent"]
    assert {t.status for t in touches(sopflow_app, customer_id=ended)} == {"cancelled"}
