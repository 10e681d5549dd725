"""Delivery in batches (``SOPFLOW_DELIVER_BATCH``): one transaction re-checks and
renders a whole batch and one records it, yet a crash in the middle of a batch
loses nothing and sends nothing twice, and a touch on a channel whose sends are
not idempotent is the only one a crash can leave ambiguous."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import pytest
from sopflow_sdk import Capabilities, Channel, ChannelSpec, SendReceipt, hookimpl

from tests.sop_support import add_customer, create_sop, touches

SHANGHAI = ZoneInfo("Asia/Shanghai")
DUE = datetime(2026, 3, 3, 10, 0, tzinfo=SHANGHAI)


class Killed(BaseException):
    """Stands for kill -9: nothing in the engine catches it."""


class Recording(Channel):
    """Records every call by idempotency key; ``crash_at`` makes the Nth call die;
    ``on_send`` runs before a call (to change the world between calls)."""

    name = "rec"
    capabilities: ClassVar[Capabilities] = Capabilities(touchpoints=frozenset({"private_chat"}))
    calls: ClassVar[list[str]] = []
    crash_at: ClassVar[int | None] = None
    on_send: ClassVar[Any] = None

    def __init__(self, config: dict[str, Any], secrets: Any) -> None:
        pass

    def send(self, message: Any) -> SendReceipt:
        self.calls.append(message.idempotency_key)
        if self.on_send:
            self.on_send(message)
        if self.crash_at is not None and len(self.calls) == self.crash_at:
            raise Killed
        return SendReceipt("sent")


class Idempotent(Recording):
    name = "idem"
    capabilities: ClassVar[Capabilities] = Capabilities(
        touchpoints=frozenset({"private_chat"}), idempotent_send=True
    )


@hookimpl
def register_channels(register):
    register(ChannelSpec("rec", Recording))
    register(ChannelSpec("idem", Idempotent))


@pytest.fixture
def sopflow_plugins():
    import sys

    return [("batch_channels", sys.modules[__name__])]


@pytest.fixture(autouse=True)
def fresh_channels(manual_clock):
    Recording.calls, Recording.crash_at, Recording.on_send = [], None, None
    Idempotent.calls, Idempotent.crash_at, Idempotent.on_send = [], None, None
    manual_clock.set(datetime(2026, 3, 2, 10, 30, tzinfo=SHANGHAI))


def six_due(api: Any, channel: str) -> list[int]:
    assert api.post("/api/v1/channel-accounts", json={"channel": channel, "name": "c"}).status_code == 201
    step = {"type": "send", "channel": channel, "touchpoint": "private_chat", "text": "hi"}
    create_sop(
        api,
        "n",
        {
            "kind": "nurture",
            "target": {"rule": {"tags": {"any_of": ["n"]}}},
            "steps": [{"day": 1, "at": "10:00", "actions": [step]}],
        },
    )
    return [add_customer(api, f"wm-{i}", tags=["n"]) for i in range(6)]


def statuses(app: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for t in touches(app):
        out[t.status] = out.get(t.status, 0) + 1
    return out


def test_a_crash_mid_batch_leaves_only_the_touch_being_called_ambiguous(sopflow_app, api, manual_clock):
    from sopflow.engine.delivery.dispatch import dispatch_due, run_until_idle

    six_due(api, "rec")
    Recording.crash_at = 3
    manual_clock.set(DUE)
    with pytest.raises(Killed):
        dispatch_due(sopflow_app)  # the six touches are one batch
    # two recorded, the one being called is ``sending``, the three after it were never marked
    assert statuses(sopflow_app) == {"sent": 2, "sending": 1, "claimed": 3}

    Recording.crash_at = None
    manual_clock.set(DUE + timedelta(minutes=6))  # past the lease
    run_until_idle(sopflow_app)
    assert statuses(sopflow_app) == {"sent": 5, "review": 1}
    assert len(Recording.calls) == 6 and len(set(Recording.calls)) == 6  # nobody called twice
    [review] = touches(sopflow_app, status="review")
    assert f"touch:{review.id}:0" == Recording.calls[2]  # the one the crash interrupted


def test_a_crash_mid_batch_on_an_idempotent_channel_resends_with_the_same_keys(
    sopflow_app, api, manual_clock
):
    from sopflow.engine.delivery.dispatch import dispatch_due, run_until_idle

    six_due(api, "idem")
    Idempotent.crash_at = 3
    manual_clock.set(DUE)
    with pytest.raises(Killed):
        dispatch_due(sopflow_app)
    assert statuses(sopflow_app) == {"sending": 6}  # marked together: re-sending is safe here

    Idempotent.crash_at = None
    manual_clock.set(DUE + timedelta(minutes=6))
    run_until_idle(sopflow_app)
    assert statuses(sopflow_app) == {"sent": 6}
    first_three, after = Idempotent.calls[:3], Idempotent.calls[3:]
    assert sorted(after) == sorted(set(after)) and set(first_three) <= set(after)  # same keys again
    assert len(set(Idempotent.calls)) == 6


def test_an_enrolment_ended_while_its_batch_is_out_is_not_sent(sopflow_app, api, manual_clock):
    """The exit arrives between the batch's preparation and this touch's turn:
    the touch is cancelled, not sent (non-idempotent channels check at their turn)."""
    from sopflow.engine.delivery.dispatch import dispatch_due
    from sopflow.engine.sops.lifecycle import end_enrollment
    from sopflow.models import Enrollment

    customers = six_due(api, "rec")
    last = customers[-1]

    def exit_last(message: Any) -> None:
        if len(Recording.calls) == 1:
            with sopflow_app.tx() as s:
                [e] = s.query(Enrollment).filter_by(customer_id=last).all()
                end_enrollment(s, e, "ended_early", "early_end_rule", sopflow_app.now(), {})

    Recording.on_send = staticmethod(exit_last)
    manual_clock.set(DUE)
    dispatch_due(sopflow_app)
    assert statuses(sopflow_app) == {"sent": 5, "cancelled": 1}
    [t] = touches(sopflow_app, customer_id=last)
    assert t.status == "cancelled" and f"touch:{t.id}:0" not in Recording.calls


def test_a_bug_in_one_touch_does_not_hold_up_its_batch(sopflow_app, api, manual_clock, monkeypatch):
    """An unexpected error preparing one touch: the batch is retried touch by
    touch; the others go out, the bad one waits for its lease like before."""
    from sopflow.engine.delivery import deliver
    from sopflow.engine.delivery.dispatch import dispatch_due

    customers = six_due(api, "rec")
    bad = customers[2]
    real = deliver.build_sends

    def build_sends(app, s, touch, *args, **kwargs):
        if touch.customer_id == bad:
            raise RuntimeError("a bug")
        return real(app, s, touch, *args, **kwargs)

    monkeypatch.setattr(deliver, "build_sends", build_sends)
    manual_clock.set(DUE)
    dispatch_due(sopflow_app)
    assert statuses(sopflow_app) == {"sent": 5, "claimed": 1}
    [t] = touches(sopflow_app, customer_id=bad)
    assert t.status == "claimed" and len(Recording.calls) == 5


def test_batches_of_the_configured_size(sopflow_app, api, manual_clock, monkeypatch):
    import attrs
    from sopflow.engine.delivery import dispatch as runner

    six_due(api, "idem")
    sizes: list[int] = []
    real = runner.deliver_touches
    monkeypatch.setattr(runner, "deliver_touches", lambda app, ids: sizes.append(len(ids)) or real(app, ids))
    monkeypatch.setattr(sopflow_app, "settings", attrs.evolve(sopflow_app.settings, deliver_batch=4))
    manual_clock.set(DUE)
    assert runner.dispatch_due(sopflow_app) == 6
    assert sizes == [4, 2] and statuses(sopflow_app) == {"sent": 6}


def test_a_scheduler_tick_hands_out_a_backlog_in_rounds_not_one_round_per_tick(
    sopflow_app, api, manual_clock, monkeypatch
):
    """A full claim round means more is due: the tick claims again at once
    (up to MAX_DISPATCH_ROUNDS) instead of leaving the rest for the next tick."""
    from sopflow.worker import scheduler as scheduling

    six_due(api, "idem")
    monkeypatch.setattr(scheduling, "DISPATCH_ROUND", 4)
    manual_clock.set(DUE)
    assert scheduling.Scheduler(sopflow_app).dispatch(sopflow_app) == 6  # a full round of 4, then 2
    assert statuses(sopflow_app) == {"sent": 6}
    monkeypatch.setattr(scheduling, "MAX_DISPATCH_ROUNDS", 1)
    assert scheduling.Scheduler(sopflow_app).dispatch(sopflow_app) == 0  # nothing left


def test_a_slow_batch_records_as_it_goes_and_renews_the_lease_of_the_rest(
    sopflow_app, api, manual_clock, monkeypatch
):
    """Calls that take long (here: each call is a minute of the app's clock and,
    for the heartbeat, more than a quarter of the lease): what is done is
    recorded, and the touches still to call get a fresh lease, so no scheduler
    takes them for abandoned meanwhile."""
    import itertools

    from sopflow.engine.delivery import deliver
    from sopflow.engine.delivery.dispatch import dispatch_due

    six_due(api, "idem")
    lease = timedelta(seconds=sopflow_app.settings.claim_lease_seconds)
    ticks = itertools.count(step=sopflow_app.settings.claim_lease_seconds)  # each look: > a quarter lease
    monkeypatch.setattr(deliver, "monotonic", lambda: float(next(ticks)))
    seen: list[tuple[dict[str, int], list[Any]]] = []

    def slow(message: Any) -> None:
        manual_clock.advance(timedelta(minutes=1))
        rows = touches(sopflow_app)
        seen.append((statuses(sopflow_app), [t.lease_until for t in rows if t.status == "sending"]))

    Idempotent.on_send = staticmethod(slow)
    manual_clock.set(DUE)
    dispatch_due(sopflow_app)
    assert statuses(sopflow_app) == {"sent": 6}
    # at the third call the first two were already recorded ...
    assert seen[2][0] == {"sent": 2, "sending": 4}
    # ... and the four still out held a lease renewed after the calls began
    assert all(until > DUE + lease for until in seen[2][1])


def test_the_due_now_claim_reads_one_customers_touches_by_its_index(tmp_path):
    """The claim the enrolling worker makes for one customer must not read the whole
    due backlog: SQLite, without statistics, picked the (status, due_at) index for it."""
    import sqlalchemy as sa
    from sopflow.db import make_engine
    from sopflow.engine.delivery.claim import claim_due_touches
    from sopflow.migrate import upgrade
    from sqlalchemy.orm import Session

    engine = make_engine(f"sqlite:///{tmp_path / 'plan.db'}")
    upgrade(engine)
    statements: list[tuple[str, Any]] = []
    sa.event.listen(
        engine,
        "before_cursor_execute",
        lambda c, cur, sql, params, ctx, many: statements.append((sql, params)),
    )
    with Session(engine) as s:
        claim_due_touches(s, DUE, 50, customer_id=7)
    [(sql, params)] = [(q, p) for q, p in statements if q.lstrip().upper().startswith("SELECT")]
    with engine.connect() as conn:
        plan = " ".join(row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params))
    engine.dispose()
    assert "ix_touches_customer_id" in plan and "ix_touches_status_due" not in plan, plan
