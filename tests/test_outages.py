"""Outages without loss, in one process: the broker failing a send, a broker
that restarted empty, a database that cannot be reached, a full or read-only
SQLite file.  The real-process versions (Redis and Postgres killed and
restarted) are in ``test_faults.py``.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from tests.sop_support import add_customer, create_sop, log_channel, send, touches

WELCOME = {"kind": "new_customer", "target": {}, "steps": [{"delay": "0m", "actions": [send("hi")]}]}
LATER = {"kind": "new_customer", "target": {}, "steps": [{"delay": "1h", "actions": [send("later")]}]}


@pytest.fixture(autouse=True)
def start_clock(manual_clock: Any) -> None:
    manual_clock.set(datetime(2026, 3, 2, 10, 30, tzinfo=ZoneInfo("Asia/Shanghai")))


def count_sends(app: Any, api: Any) -> Counter[str]:
    channel = log_channel(app, api)
    calls: Counter[str] = Counter()
    original = channel.send

    def counting(message: Any) -> Any:
        calls[message.idempotency_key] += 1
        return original(message)

    channel.send = counting
    return calls


def broken(*_args: Any, **_kwargs: Any) -> None:
    import redis

    raise redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")


def drain(app: Any, broker: Any) -> int:
    """Run every queued message in this thread, as a worker would; returns how many."""
    from dramatiq import Message

    ran = 0
    queue = broker.queues["sopflow"]
    while not queue.empty():
        message = Message.decode(queue.get_nowait())
        broker.actors[message.actor_name].fn(*message.args)
        ran += 1
    return ran


def enrolments(app: Any) -> int:
    from sopflow.models import Enrollment

    with app.tx() as s:
        return s.scalar(sa.select(sa.func.count()).select_from(Enrollment)) or 0


def test_an_event_accepted_while_the_broker_is_down_is_evaluated_exactly_once(
    api: Any, sopflow_app: Any, broker: Any, manual_clock: Any, monkeypatch: Any
) -> None:
    """The issue's sequence: POST during a broker outage, the broker comes back,
    the client retries.  The POST is a success (the event is durable work), the
    sweep evaluates it after the grace, the retry is a duplicate, and the
    customer is enrolled once and greeted once."""
    from sopflow.worker.scheduler import Scheduler

    create_sop(api, "welcome", WELCOME)
    calls = count_sends(sopflow_app, api)
    monkeypatch.setattr(broker.actors["evaluate_events"], "send", broken)
    r = api.post(
        "/api/v1/events",
        json={"events": [{"type": "customer.added", "idempotency_key": "k1", "identity": ident("wm-1")}]},
    )
    assert r.status_code == 200 and r.json()["results"][0]["status"] == "created"
    assert enrolments(sopflow_app) == 0
    monkeypatch.undo()
    scheduler = Scheduler(sopflow_app)
    scheduler.recovery.epoch_seen = scheduler.recovery.reconcile_claims() and None  # the broker is known
    scheduler.tick()
    assert enrolments(sopflow_app) == 0  # within the grace a queued message may still come
    manual_clock.advance(timedelta(seconds=sopflow_app.settings.evaluate_grace_seconds + 1))
    scheduler.tick()
    assert enrolments(sopflow_app) == 1
    again = api.post(
        "/api/v1/events",
        json={"events": [{"type": "customer.added", "idempotency_key": "k1", "identity": ident("wm-1")}]},
    )
    assert again.json()["results"][0]["status"] == "duplicate"
    drain(sopflow_app, broker)
    scheduler.tick()
    assert enrolments(sopflow_app) == 1
    assert sorted(calls.values()) == [1]


def ident(external_id: str) -> dict[str, str]:
    return {"channel": "wecom", "external_id": external_id, "staff_external_id": "zhangsan"}


def test_a_re_sent_evaluate_message_changes_nothing(api: Any, sopflow_app: Any, broker: Any) -> None:
    """Evaluation is marked in the transaction of its effects: the second run of
    the same message (a redelivery, the sweep racing a worker) is a no-op."""
    from dramatiq import Message
    from sopflow.worker.runtime import evaluate_batch

    create_sop(api, "later", LATER)
    add_customer(api, "wm-2")
    message = Message.decode(broker.queues["sopflow"].get_nowait())
    assert message.actor_name == "evaluate_events"
    [first] = evaluate_batch(sopflow_app, *message.args)
    [second] = evaluate_batch(sopflow_app, *message.args)
    assert first["enrolled"] == 1
    assert second["enrolled"] == 0 and second["already_evaluated"] == 1
    assert enrolments(sopflow_app) == 1 and len(touches(sopflow_app)) == 1


def test_a_failed_hand_off_releases_its_claims_at_once(
    api: Any, sopflow_app: Any, broker: Any, manual_clock: Any, monkeypatch: Any
) -> None:
    """The claim is given back when its deliver message cannot be sent: it does not
    sit ``claimed`` for the lease, nor count against the in-flight cap."""
    from sopflow.engine.delivery.dispatch import dispatch_due
    from sopflow.outages import DependencyUnavailable
    from sopflow.worker.scheduler import Scheduler

    create_sop(api, "later", LATER)
    for i in range(3):
        add_customer(api, f"wm-{i}")
    drain(sopflow_app, broker)
    manual_clock.advance(timedelta(hours=1))
    monkeypatch.setattr(broker.actors["deliver_batch"], "send", broken)
    with pytest.raises(DependencyUnavailable):
        dispatch_due(sopflow_app)
    rows = touches(sopflow_app)
    assert [(t.status, t.attempts, t.lease_until) for t in rows] == [("scheduled", 0, None)] * 3
    monkeypatch.undo()
    calls = count_sends(sopflow_app, api)
    Scheduler(sopflow_app).tick()
    drain(sopflow_app, broker)
    assert [t.status for t in touches(sopflow_app)] == ["sent"] * 3
    assert sorted(calls.values()) == [1, 1, 1]


def test_a_broker_that_restarted_empty_gets_its_claims_back_within_a_tick(
    api: Any, sopflow_app: Any, broker: Any, manual_clock: Any
) -> None:
    """Claims handed to a broker that then lost its queue are released at the first
    tick that sees the new broker (its epoch), not after the lease; a claim a
    worker already started stays under its lease (it may be mid-send)."""
    from sopflow.worker.actors import install
    from sopflow.worker.broker import make_broker
    from sopflow.worker.scheduler import Scheduler

    create_sop(api, "later", LATER)
    for i in range(3):
        add_customer(api, f"wm-{i}")
    drain(sopflow_app, broker)
    manual_clock.advance(timedelta(hours=1))
    scheduler = Scheduler(sopflow_app)
    assert scheduler.tick() == 3  # claimed, three touches in one deliver message
    started = touches(sopflow_app)[0].id
    with sopflow_app.tx() as s:
        s.execute(
            sa.text("UPDATE touches SET started_at = :now WHERE id = :id"),
            {"now": manual_clock.now(), "id": started},
        )
    broker.close()
    restarted = make_broker(sopflow_app.settings)  # the old queue is gone
    install(sopflow_app, restarted)
    calls = count_sends(sopflow_app, api)
    try:
        scheduler.tick()
        drain(sopflow_app, restarted)
    finally:
        restarted.close()
    by_id = {t.id: t.status for t in touches(sopflow_app)}
    assert by_id.pop(started) == "claimed"  # started: its lease decides
    assert list(by_id.values()) == ["sent", "sent"]
    assert sorted(calls.values()) == [1, 1]


def test_a_database_that_cannot_be_reached_answers_503_with_retry_after() -> None:
    from litestar.testing import TestClient
    from sopflow.api.app import build_api
    from sopflow.engine.customers.tenants import KEY_PREFIX
    from sopflow_sdk.testing.harness import make_test_app

    app = make_test_app("postgresql+psycopg://sopflow@127.0.0.1:9/nowhere")  # nothing listens on port 9
    try:
        with TestClient(build_api(app), raise_server_exceptions=False) as client:
            r = client.post(
                "/api/v1/events",
                headers={"authorization": f"Bearer {KEY_PREFIX}any"},
                json={"events": [{"type": "x", "idempotency_key": "k", "identity": ident("wm")}]},
            )
    finally:
        app.dispose()
    assert r.status_code == 503
    assert r.headers["retry-after"] == str(app.settings.retry_after_seconds)
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["dependency"] == "database" and body["status"] == 503
    assert "nothing was stored" in body["detail"]


@pytest.fixture
def sqlite_app(tmp_path: Any, manual_clock: Any) -> Any:
    """An app on its own SQLite file (whatever the pass's backend): these are the
    embedded mode's disk outages."""
    from sopflow.db import make_engine
    from sopflow.migrate import upgrade
    from sopflow_sdk.testing.harness import make_test_app

    url = f"sqlite:///{tmp_path / 'embedded.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    app = make_test_app(url, clock=manual_clock)
    yield app
    app.dispose()


def sqlite_api(app: Any) -> Any:
    from litestar.testing import TestClient
    from sopflow.api.app import build_api
    from sopflow_sdk.testing.harness import ApiClient, new_tenant

    tenant_id, key = new_tenant(app, "embedded")
    return ApiClient(TestClient(build_api(app), raise_server_exceptions=False), key, tenant_id)


def stored_events(app: Any) -> int:
    from sopflow.models import Event

    with app.tx() as s:
        return s.scalar(sa.select(sa.func.count()).select_from(Event)) or 0


def test_a_full_disk_answers_503_before_anything_is_acknowledged_and_recovers(sqlite_app: Any) -> None:
    """SQLite answers "database or disk is full" (here: the file may not grow, as on
    a full disk): the batch is a 503 naming the disk and nothing of it is stored.
    Once there is room again the same request succeeds — no restart."""
    api = sqlite_api(sqlite_app)
    full = {"on": True}

    @sa.event.listens_for(sqlite_app.engine, "connect")
    def no_room(dbapi_conn: Any, _record: Any) -> None:
        if full["on"]:
            pages = dbapi_conn.execute("PRAGMA page_count").fetchone()[0]
            dbapi_conn.execute(f"PRAGMA max_page_count = {pages}")

    sqlite_app.engine.dispose()  # connections opened from now on see the full disk
    big = [
        {
            "type": "note",
            "idempotency_key": f"k{i}",
            "identity": ident(f"wm-{i}"),
            "payload": {"t": "x" * 2000},
        }
        for i in range(200)
    ]
    r = api.post("/api/v1/events", json={"events": big})
    assert r.status_code == 503, r.text
    assert r.json()["dependency"] == "disk" and "retry-after" in r.headers
    full["on"] = False  # space freed: the pool re-opened its connections after the error
    assert stored_events(sqlite_app) == 0
    r = api.post("/api/v1/events", json={"events": big})
    assert r.status_code == 200, r.text
    assert stored_events(sqlite_app) == 200


def test_a_connection_opened_read_only_is_replaced_after_its_error(sqlite_app: Any, tmp_path: Any) -> None:
    """A connection SQLite opened while the file was read-only stays read-only; the
    error drops it (and the pool), so the next request writes again."""
    import sqlite3

    api = sqlite_api(sqlite_app)
    path = str(tmp_path / "embedded.db")
    opened = {"read_only": True}
    pool = sqlite_app.engine.pool

    def connect() -> Any:
        if opened["read_only"]:
            opened["read_only"] = False  # the permissions come back after this one
            return sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        return sqlite3.connect(path, check_same_thread=False)

    pool._creator = lambda *_: connect()
    sqlite_app.engine.dispose()
    event = {"events": [{"type": "note", "idempotency_key": "ro-1", "identity": ident("wm-ro")}]}
    r = api.post("/api/v1/events", json=event)
    assert r.status_code == 503 and r.json()["dependency"] == "disk", r.text
    r = api.post("/api/v1/events", json=event)
    assert r.status_code == 200, r.text


def test_failures_of_one_class_are_logged_once_per_interval_with_a_count() -> None:
    from sopflow.failure_log import FailureLog

    lines: list[tuple[str, dict[str, Any]]] = []

    class Capture:
        def error(self, event: str, **kw: Any) -> None:
            lines.append((event, kw))

        info = error

    now = [0.0]
    log = FailureLog(30.0, Capture(), clock=lambda: now[0])
    down = sa.exc.OperationalError("SELECT 1", {}, Exception("connection refused"))
    for _ in range(1000):
        log.report("deliver_failed", down)
    now[0] = 31.0
    log.report("deliver_failed", down)
    log.report("deliver_failed", ValueError("a bug"))
    assert [(e, kw.get("dependency"), kw["suppressed"]) for e, kw in lines] == [
        ("deliver_failed", "database", 0),
        ("deliver_failed", "database", 999),
        ("deliver_failed", None, 0),
    ]
    assert "exc_info" not in lines[0][1] and "exc_info" in lines[2][1]  # tracebacks only for bugs


def test_a_batch_against_a_dead_database_is_tried_once_not_touch_by_touch(
    sopflow_app: Any, monkeypatch: Any
) -> None:
    from sopflow.engine.delivery import deliver

    tries: list[int] = []

    def dead(app: Any, ids: Any, now: Any) -> Any:
        tries.append(len(ids))
        raise sa.exc.OperationalError("SELECT", {}, Exception("server closed the connection"))

    monkeypatch.setattr(deliver, "_prepare", dead)
    with pytest.raises(sa.exc.OperationalError):
        deliver.deliver_touches(sopflow_app, list(range(1, 51)))
    assert tries == [50]


def test_outcomes_of_calls_made_are_recorded_once_the_database_is_back() -> None:
    from sopflow.engine.delivery.outage_retry import retry_through_outage

    attempts, slept = [], []

    def record() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise sa.exc.OperationalError("UPDATE", {}, Exception("connection refused"))
        return "recorded"

    assert retry_through_outage(record, 10, sleep=slept.append) == "recorded"
    assert slept == [0.25, 0.5]
    with pytest.raises(ValueError):
        retry_through_outage(lambda: (_ for _ in ()).throw(ValueError("bug")), 10, sleep=slept.append)
