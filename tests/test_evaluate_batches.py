"""The evaluate step takes the events one ingest stored together in one
transaction, and one event that cannot be evaluated holds back no other."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from tests.sop_support import create_sop, send
from tests.test_outages import drain, enrolments

LATER = {"kind": "new_customer", "target": {}, "steps": [{"delay": "1h", "actions": [send("later")]}]}


@pytest.fixture(autouse=True)
def start_clock(manual_clock: Any) -> None:
    manual_clock.set(datetime(2026, 3, 2, 10, 30, tzinfo=ZoneInfo("Asia/Shanghai")))


def added(n: int) -> list[dict[str, Any]]:
    return [
        {
            "type": "customer.added",
            "idempotency_key": f"k{i}",
            "identity": {"channel": "wecom", "external_id": f"wm-{i}", "staff_external_id": "zhangsan"},
        }
        for i in range(n)
    ]


def unevaluated(app: Any) -> list[str]:
    from sopflow.models import Event

    with app.tx() as s:
        return sorted(s.scalars(sa.select(Event.idempotency_key).where(Event.evaluated_at.is_(None))))


def commits(app: Any) -> list[int]:
    """A counter of the transactions committed on the app's engine from now on."""
    seen = [0]
    sa.event.listen(app.engine, "commit", lambda _conn: seen.__setitem__(0, seen[0] + 1))
    return seen


def test_one_ingest_is_one_evaluate_message_and_one_transaction(
    api: Any, sopflow_app: Any, broker: Any
) -> None:
    create_sop(api, "later", LATER)
    assert api.post("/api/v1/events", json={"events": added(5)}).status_code == 200
    queue = broker.queues["sopflow"]
    assert queue.qsize() == 1  # the five events travel together
    seen = commits(sopflow_app)
    assert drain(sopflow_app, broker) == 1
    assert seen[0] == 1  # evaluated in one transaction
    assert enrolments(sopflow_app) == 5 and unevaluated(sopflow_app) == []


def test_an_event_that_fails_is_left_to_the_sweep_and_the_others_are_evaluated(
    api: Any, sopflow_app: Any, broker: Any, monkeypatch: Any
) -> None:
    from dramatiq import Message
    from sopflow.engine import evaluate as evaluate_module
    from sopflow.worker.runtime import evaluate_batch

    create_sop(api, "later", LATER)
    outcomes = api.post("/api/v1/events", json={"events": added(3)}).json()["results"]
    poison = outcomes[1]["customer_id"]
    real = evaluate_module.evaluate_customer

    def failing(session: Any, tenant_id: int, event: Any, *args: Any) -> Any:
        if event["customer_id"] == poison:
            raise RuntimeError("a bug in one rule")
        return real(session, tenant_id, event, *args)

    monkeypatch.setattr(evaluate_module, "evaluate_customer", failing)
    reported: list[str] = []
    monkeypatch.setattr(sopflow_app.failures, "report", lambda what, exc, **_kw: reported.append(what))
    message = Message.decode(broker.queues["sopflow"].get_nowait())
    with pytest.raises(RuntimeError, match="a bug in one rule"):  # raised: the message is retried
        evaluate_batch(sopflow_app, *message.args)
    assert unevaluated(sopflow_app) == ["k1"]  # the sweep's durable record of what is owed
    assert enrolments(sopflow_app) == 2 and reported == ["evaluate_failed"]
    monkeypatch.setattr(evaluate_module, "evaluate_customer", real)
    counts = evaluate_batch(sopflow_app, *message.args)  # the retry: the others are no-ops
    assert [c.get("already_evaluated", 0) for c in counts] == [1, 0, 1]
    assert enrolments(sopflow_app) == 3 and unevaluated(sopflow_app) == []
