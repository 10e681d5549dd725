"""Group commit of ``POST /api/v1/events`` (api/ingest_writer.py): the batches
that arrive while the writer is busy share its next transaction and its
evaluate message, each is answered with its own outcomes, and one refused batch
costs the others nothing."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import sqlalchemy as sa
from sopflow.api.ingest_writer import IngestWriter
from sopflow.errors import InvalidInput

from tests.sop_support import create_sop, send
from tests.test_outages import drain, enrolments

LATER = {"kind": "new_customer", "target": {}, "steps": [{"delay": "1h", "actions": [send("later")]}]}


def added(key: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "customer.added",
        "idempotency_key": key,
        "identity": {"channel": "wecom", "external_id": f"wm-{key}", "staff_external_id": "zhangsan"},
        **extra,
    }


class HeldWriter(IngestWriter):
    """Its first transaction waits until ``release()``: what arrives meanwhile queues."""

    def __init__(self, app: Any, group_events: int = 500) -> None:
        super().__init__(app, group_events)
        self.groups: list[int] = []
        self.entered, self.gate = threading.Event(), threading.Event()

    def _commit(self, group: list[Any]) -> Any:
        self.groups.append(len(group))
        if len(self.groups) == 1:
            self.entered.set()
            assert self.gate.wait(30)
        return super()._commit(group)


def run(writer: HeldWriter, tenant_id: int, batches: list[list[dict[str, Any]]]) -> list[Any]:
    """The first batch holds the writer; the others queue behind it; then all go."""
    answers: list[Any] = [None] * len(batches)

    def submit(i: int) -> None:
        try:
            answers[i] = writer.submit(tenant_id, batches[i])
        except Exception as exc:
            answers[i] = exc

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(len(batches))]
    threads[0].start()
    assert writer.entered.wait(30)
    for t in threads[1:]:
        t.start()
    for _ in range(3000):  # bounded: the queued batches are in within seconds
        if writer._queue.qsize() == len(batches) - 1:
            break
        time.sleep(0.01)
    writer.gate.set()
    for t in threads:
        t.join(30)
    writer.close()
    return answers


def event_keys(app: Any) -> list[str]:
    from sopflow.models import Event

    with app.tx() as s:
        return sorted(s.scalars(sa.select(Event.idempotency_key).where(Event.type == "customer.added")))


def test_batches_that_arrive_together_share_one_transaction_and_one_evaluate_message(
    api: Any, sopflow_app: Any, broker: Any
) -> None:
    create_sop(api, "later", LATER)
    writer = HeldWriter(sopflow_app)
    batches = [[added("a")], *([added(f"b{i}"), added(f"c{i}")] for i in range(5))]
    answers = run(writer, api.tenant_id, batches)
    assert writer.groups == [1, 5] and writer.transactions == 2
    for batch, answer in zip(batches, answers, strict=True):
        assert [o["status"] for o in answer] == ["created"] * len(batch)
    ids = [o["event_id"] for answer in answers for o in answer]
    assert len(set(ids)) == 11
    assert event_keys(sopflow_app) == sorted(e["idempotency_key"] for b in batches for e in b)
    assert broker.queues["sopflow"].qsize() == 2  # one evaluate message per transaction
    assert drain(sopflow_app, broker) == 2 and enrolments(sopflow_app) == 11


def test_the_same_key_twice_in_one_group_is_one_event(api: Any, sopflow_app: Any) -> None:
    writer = HeldWriter(sopflow_app)
    answers = run(writer, api.tenant_id, [[added("first")], [added("same")], [added("same")]])
    assert writer.groups == [1, 2]
    statuses = sorted(a[0]["status"] for a in answers[1:])
    assert statuses == ["created", "duplicate"]
    assert answers[1][0]["event_id"] == answers[2][0]["event_id"]
    assert event_keys(sopflow_app) == ["first", "same"]


def test_a_refused_batch_gets_its_own_error_and_the_others_commit(api: Any, sopflow_app: Any) -> None:
    writer = HeldWriter(sopflow_app)
    bad = [added("ok-in-bad"), added("bad", fields={"no_such_field": "x"})]
    answers = run(writer, api.tenant_id, [[added("first")], [added("x")], bad, [added("y")]])
    # the group of three failed as a whole, then each went alone
    assert writer.groups == [1, 3, 1, 1, 1] and writer.transactions == 3
    assert isinstance(answers[2], InvalidInput)
    assert [e["field"] for e in answers[2].errors] == ["events[1].fields.no_such_field"]
    assert event_keys(sopflow_app) == ["first", "x", "y"]  # nothing of the refused batch


def test_one_event_per_group_when_grouping_is_off(api: Any, sopflow_app: Any) -> None:
    writer = HeldWriter(sopflow_app, group_events=1)
    answers = run(writer, api.tenant_id, [[added("a")], [added("b")], [added("c")]])
    assert writer.groups == [1, 1, 1] and all(a[0]["status"] == "created" for a in answers)


def test_the_api_answers_through_the_writer(api: Any, sopflow_app: Any) -> None:
    answer = api.post("/api/v1/events", json={"events": [added("via-api")]})
    assert answer.status_code == 200 and answer.json()["results"][0]["status"] == "created"
    refused = api.post("/api/v1/events", json={"events": [added("bad", fields={"nope": 1})]})
    assert refused.status_code == 422
    assert [e["field"] for e in refused.json()["errors"]] == ["events[0].fields.nope"]
    assert event_keys(sopflow_app) == ["via-api"]


@pytest.mark.parametrize("value", ["0", "-3", "many"])
def test_the_group_size_setting_is_a_positive_integer(value: str) -> None:
    from sopflow.settings import Settings
    from sopflow_sdk import ConfigError

    with pytest.raises(ConfigError, match="SOPFLOW_INGEST_GROUP_EVENTS"):
        Settings.from_env({"SOPFLOW_INGEST_GROUP_EVENTS": value})


@pytest.mark.parametrize("stale", ["event", "identity"])
def test_a_row_stored_since_the_batch_read_makes_the_batch_go_event_by_event(
    api: Any, sopflow_app: Any, monkeypatch: pytest.MonkeyPatch, stale: str
) -> None:
    """The batch is written under one savepoint on what its reads found; when
    another transaction stored one of its events (or created one of its
    identities) in between, that savepoint fails and each event is written
    again under its own: no error, nothing twice."""
    from sopflow.engine.customers import ingest as ingest_module
    from sopflow.models import Customer

    first = api.post("/api/v1/events", json={"events": [added("before")]}).json()["results"][0]
    # the reads as if made before that transaction committed: the first call only
    reads = {"event": "stored_events", "identity": "absent_identities"}[stale]
    real, calls = getattr(ingest_module, reads), []

    def before_the_other_commit(session: Any, tenant_id: int, items: Any) -> Any:
        calls.append(1)
        found = real(session, tenant_id, items)
        if len(calls) > 1:
            return found
        return {} if stale == "event" else {*found, ("wecom", "wm-before")}

    monkeypatch.setattr(ingest_module, reads, before_the_other_commit)
    again = added("before") if stale == "event" else added("other-key", identity=added("before")["identity"])
    batch = [added("new-1"), again, added("new-2")]
    answer = api.post("/api/v1/events", json={"events": batch})
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    expected = ["created", "duplicate", "created"] if stale == "event" else ["created"] * 3
    assert [r["status"] for r in results] == expected
    if stale == "event":
        assert results[1]["event_id"] == first["event_id"]
    keys = {"event": ["before", "new-1", "new-2"], "identity": ["before", "new-1", "new-2", "other-key"]}
    assert event_keys(sopflow_app) == keys[stale]
    with sopflow_app.tx() as s:  # the identity still names one customer
        assert s.scalar(sa.select(sa.func.count()).select_from(Customer)) == 3
