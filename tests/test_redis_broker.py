"""A due touch travels the real Dramatiq Redis broker end to end.

The schedule lives in the database; the broker only carries work that is due.
Here: an SOP with one log-channel step, a touch that falls due under the
manual clock, ``Scheduler.tick()`` claims it and enqueues a ``deliver``
message into Redis, and an in-process ``dramatiq.Worker`` (started and stopped
by the test) delivers it — exactly once.  The same flow runs on the in-memory
``StubBroker`` (the embedded mode's broker).

Redis comes from ``SOPFLOW_TEST_REDIS_URL`` (set by ``scripts/services.sh`` and
``scripts/test.sh`` on both passes); the test uses its own database number
(/5) and empties it before and after.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from tests.sop_support import add_customer, create_sop, log_channel, send

REDIS_DB = 5
QUEUE = "sopflow"  # the queue every sopflow actor uses
NAMESPACE = "sopflow"  # make_broker's Redis key prefix


def redis_url() -> str:
    url = os.environ.get("SOPFLOW_TEST_REDIS_URL")
    if not url:
        if os.environ.get("SOPFLOW_TEST_BACKEND") == "postgres":
            pytest.fail(
                "SOPFLOW_TEST_REDIS_URL is not set; the Postgres pass needs a real Redis. "
                'Run scripts/test.sh, or eval "$(scripts/services.sh start)" first'
            )
        pytest.skip('SOPFLOW_TEST_REDIS_URL is not set; eval "$(scripts/services.sh start)" to run this')
    base, _, index = url.rpartition("/")
    # offset from the pass's own database: scripts/test.sh runs two passes at once
    return f"{base}/{int(index or 0) + REDIS_DB}"


def wait_until(predicate: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


@pytest.fixture(autouse=True)
def start_clock(manual_clock: Any) -> None:
    manual_clock.set(datetime(2026, 3, 2, 10, 30, tzinfo=ZoneInfo("Asia/Shanghai")))


@pytest.fixture
def redis_app(sopflow_database: Any, request: pytest.FixtureRequest, manual_clock: Any) -> Iterator[Any]:
    """An app (manual clock) whose settings point at the test Redis, no broker yet."""
    import redis
    from sopflow_sdk.testing.harness import make_test_app

    url = redis_url()
    client = redis.Redis.from_url(url)
    client.flushdb()
    app = make_test_app(
        sopflow_database.url_for_test(request.node.name),
        clock=manual_clock,
        env={"SOPFLOW_REDIS_URL": url},
    )
    yield app
    if app.broker is not None:
        app.broker.close()
        from sopflow.worker.actors import uninstall

        uninstall(app)
    app.dispose()
    client.flushdb()
    client.close()


@pytest.fixture
def redis_api(redis_app: Any) -> Iterator[Any]:
    from litestar.testing import TestClient
    from sopflow.api.app import build_api
    from sopflow_sdk.testing.harness import ApiClient, new_tenant

    tenant_id, key = new_tenant(redis_app, "acme")
    with TestClient(build_api(redis_app), raise_server_exceptions=False) as client:
        yield ApiClient(client, key, tenant_id)


ONE_STEP = {
    "kind": "new_customer",
    "target": {},
    "steps": [{"delay": "1h", "actions": [send("你好 {{ customer.display_name }}")]}],
}


def count_sends(app: Any, api: Any) -> Counter[str]:
    """Wrap the tenant's log channel so every call to ``send`` is counted by
    idempotency key (the log channel itself de-duplicates, which would hide a
    second delivery)."""
    channel = log_channel(app, api)
    calls: Counter[str] = Counter()
    original = channel.send

    def counting(message: Any) -> Any:
        calls[message.idempotency_key] += 1
        return original(message)

    channel.send = counting
    return calls


def touch_rows(app: Any, sop_id: int) -> list[Any]:
    from sopflow.models import Touch

    with app.tx() as s:
        return list(s.scalars(sa.select(Touch).where(Touch.sop_id == sop_id).order_by(Touch.id)))


def sent_events(app: Any) -> int:
    from sopflow.models import Event

    with app.tx() as s:
        return s.scalar(sa.select(sa.func.count()).select_from(Event).where(Event.type == "touch.sent")) or 0


def test_redis_broker_carries_a_due_touch_exactly_once(redis_app: Any, redis_api: Any, manual_clock: Any):
    import redis
    from dramatiq.brokers.redis import RedisBroker
    from sopflow.worker.actors import install
    from sopflow.worker.broker import make_broker, start_worker
    from sopflow.worker.scheduler import Scheduler

    app, api = redis_app, redis_api
    sop_id = create_sop(api, "welcome", ONE_STEP)
    customer = add_customer(api, "wm-redis")  # no broker yet: enrolment is evaluated inline
    [touch] = touch_rows(app, sop_id)
    assert touch.status == "scheduled" and touch.customer_id == customer
    calls = count_sends(app, api)

    broker = make_broker(app.settings)
    assert isinstance(broker, RedisBroker), "SOPFLOW_REDIS_URL set: make_broker must give the Redis broker"
    install(app, broker)
    scheduler = Scheduler(app)
    queue = redis.Redis.from_url(redis_url())

    assert scheduler.tick() == 0  # not due yet: nothing enqueued
    assert queue.hlen(f"{NAMESPACE}:{QUEUE}.msgs") == 0

    manual_clock.advance(timedelta(hours=1, seconds=1))
    assert scheduler.tick() == 1  # claimed and enqueued, not delivered: no worker yet
    [claimed] = touch_rows(app, sop_id)
    assert claimed.status == "claimed" and claimed.lease_until is not None
    assert queue.hlen(f"{NAMESPACE}:{QUEUE}.msgs") == 1, "the deliver message should wait in Redis"
    assert sum(calls.values()) == 0

    worker = start_worker(broker, 2)
    try:
        wait_until(lambda: touch_rows(app, sop_id)[0].status == "sent", "the worker to deliver the touch")
        broker.join(QUEUE, timeout=10_000)
        worker.join()
        # another tick and more time: nothing is due, nothing is sent again
        manual_clock.advance(timedelta(minutes=10))
        assert scheduler.tick() == 0
        broker.join(QUEUE, timeout=10_000)
    finally:
        worker.stop()

    [done] = touch_rows(app, sop_id)
    assert done.status == "sent" and done.attempts == 1 and done.sent_at is not None
    assert calls == Counter({f"touch:{done.id}:0": 1})
    assert [m.text for m in log_channel(app, api).sent] == ["你好 "]
    assert sent_events(app) == 1
    assert queue.hlen(f"{NAMESPACE}:{QUEUE}.msgs") == 0, "the message was acknowledged"
    enrollment = api.get(f"/api/v1/sops/{sop_id}/enrollments").json()["items"][0]
    assert enrollment["status"] == "completed"
    queue.close()


def test_redis_broker_evaluates_ingested_events_and_delivers(
    redis_app: Any, redis_api: Any, manual_clock: Any
):
    """With the broker installed first, ingest → evaluate_events (through Redis)
    → enrolment; then the due touch → deliver (through Redis) → sent once."""
    from sopflow.worker.actors import install
    from sopflow.worker.broker import make_broker, start_worker
    from sopflow.worker.scheduler import Scheduler

    app, api = redis_app, redis_api
    sop_id = create_sop(api, "welcome", ONE_STEP)
    calls = count_sends(app, api)
    broker = make_broker(app.settings)
    install(app, broker)
    worker = start_worker(broker, 2)
    try:
        customers = [add_customer(api, f"wm-{i}") for i in range(3)]
        wait_until(lambda: len(touch_rows(app, sop_id)) == 3, "evaluate_event to enrol three customers")
        manual_clock.advance(timedelta(hours=2))
        assert Scheduler(app).tick() == 3
        wait_until(
            lambda: {t.status for t in touch_rows(app, sop_id)} == {"sent"}, "three touches to be sent"
        )
        broker.join(QUEUE, timeout=10_000)
    finally:
        worker.stop()
    rows = touch_rows(app, sop_id)
    assert sorted(t.customer_id for t in rows) == sorted(customers)
    assert calls == Counter({f"touch:{t.id}:0": 1 for t in rows})


def test_stub_broker_carries_a_due_touch_exactly_once(api: Any, sopflow_app: Any, manual_clock: Any):
    """The embedded mode: no SOPFLOW_REDIS_URL → Dramatiq's in-memory broker with
    worker threads in the same process (the ``stub_broker`` fixture)."""
    from dramatiq.brokers.stub import StubBroker
    from sopflow.worker.actors import install
    from sopflow.worker.broker import make_broker, start_worker
    from sopflow.worker.scheduler import Scheduler

    app = sopflow_app
    assert app.settings.redis_url is None
    sop_id = create_sop(api, "welcome", ONE_STEP)
    add_customer(api, "wm-stub")
    calls = count_sends(app, api)
    broker = make_broker(app.settings)
    assert isinstance(broker, StubBroker)
    install(app, broker)
    scheduler = Scheduler(app)
    manual_clock.advance(timedelta(hours=1, seconds=1))
    assert scheduler.tick() == 1
    assert broker.queues[QUEUE].qsize() == 1  # enqueued, waiting for a worker
    worker = start_worker(broker, 2)
    try:
        broker.join(QUEUE, timeout=10_000)
        worker.join()
        manual_clock.advance(timedelta(minutes=10))
        assert scheduler.tick() == 0
    finally:
        worker.stop()
        broker.close()
        from sopflow.worker.actors import uninstall

        uninstall(app)
    [done] = touch_rows(app, sop_id)
    assert done.status == "sent" and done.attempts == 1
    assert calls == Counter({f"touch:{done.id}:0": 1})
    assert sent_events(app) == 1


def test_a_touch_due_at_enrolment_goes_out_without_waiting_for_the_scheduler(
    redis_app: Any, redis_api: Any, manual_clock: Any
):
    """A first step with no delay (a welcome) is dispatched by the worker that
    enrolled the customer — no scheduler tick runs in this test — and exactly
    once for a burst of enrolments."""
    from sopflow.worker.actors import install
    from sopflow.worker.broker import make_broker, start_worker

    app, api = redis_app, redis_api
    now_step = {"kind": "new_customer", "target": {}, "steps": [{"delay": "0m", "actions": [send("hi")]}]}
    sop_id = create_sop(api, "now", now_step)
    calls = count_sends(app, api)
    broker = make_broker(app.settings)
    install(app, broker)
    worker = start_worker(broker, 4)
    try:
        customers = [add_customer(api, f"wm-now-{i}") for i in range(12)]
        wait_until(
            lambda: [t.status for t in touch_rows(app, sop_id)] == ["sent"] * 12,
            "every due-now touch to be sent with no scheduler running",
        )
        broker.join(QUEUE, timeout=10_000)
    finally:
        worker.stop()
    rows = touch_rows(app, sop_id)
    assert sorted(t.customer_id for t in rows) == sorted(customers)
    assert calls == Counter({f"touch:{t.id}:0": 1 for t in rows})


def test_an_api_process_with_redis_only_enqueues_the_evaluate_step(redis_app: Any, manual_clock: Any):
    """``sopflow serve`` (``enqueue_only``): the request stores the event and
    enqueues its evaluate step; the enrolment happens in a worker."""
    import redis
    from litestar.testing import TestClient
    from sopflow.api.app import build_api
    from sopflow.worker.actors import enqueue_only
    from sopflow.worker.broker import start_worker
    from sopflow_sdk.testing.harness import ApiClient, new_tenant

    app = enqueue_only(redis_app)
    assert app.broker is not None
    tenant_id, key = new_tenant(app, "acme")
    queue = redis.Redis.from_url(redis_url())
    with TestClient(build_api(app), raise_server_exceptions=False) as client:
        api = ApiClient(client, key, tenant_id)
        sop_id = create_sop(api, "welcome", ONE_STEP)
        add_customer(api, "wm-serve")
        assert touch_rows(app, sop_id) == []  # not evaluated inside the request
        assert queue.hlen(f"{NAMESPACE}:{QUEUE}.msgs") >= 1
        worker = start_worker(app.broker, 2)
        try:
            wait_until(lambda: len(touch_rows(app, sop_id)) == 1, "a worker to evaluate the event")
            app.broker.join(QUEUE, timeout=10_000)
        finally:
            worker.stop()
    queue.close()


def test_the_evaluate_step_itself_delivers_a_touch_due_at_enrolment(
    api: Any, sopflow_app: Any, manual_clock: Any
):
    """No dispatch round, no deliver message: the evaluate step that enrols the
    customer claims and sends the due-now touch before it returns (two queue hops
    fewer between an event and a welcome).  The claim is the scheduler's: a second
    due-now SOP over the daily cap is deferred, not sent."""
    from dramatiq import Message
    from sopflow.worker.actors import install
    from sopflow.worker.broker import make_broker
    from sopflow.worker.runtime import evaluate_batch

    app = sopflow_app
    now_step = {"kind": "new_customer", "target": {}, "steps": [{"delay": "0m", "actions": [send("hi")]}]}
    first = create_sop(api, "now", now_step)
    second = create_sop(api, "now too", now_step)
    calls = count_sends(app, api)
    broker = make_broker(app.settings)
    install(app, broker)  # no worker runs: a queued message would stay queued
    try:
        add_customer(api, "wm-due-now")
        assert broker.queues[QUEUE].qsize() == 1  # the API enqueued the evaluate step
        message = Message.decode(broker.queues[QUEUE].get_nowait())
        assert message.actor_name == "evaluate_events"
        evaluate_batch(app, *message.args, deliver_now=True)
        assert broker.queues[QUEUE].qsize() == 0  # nothing else went through the queue
        assert broker.queues.get(f"{QUEUE}.DQ") is None or broker.queues[f"{QUEUE}.DQ"].qsize() == 0
    finally:
        broker.close()
        from sopflow.worker.actors import uninstall

        uninstall(app)
    rows = touch_rows(app, first) + touch_rows(app, second)
    assert sorted(t.status for t in rows) == ["scheduled", "sent"]
    [sent] = [t for t in rows if t.status == "sent"]
    [held] = [t for t in rows if t.status == "scheduled"]
    assert held.defer_reason == "customer_cap" and held.due_at > manual_clock.now()
    assert calls == Counter({f"touch:{sent.id}:0": 1})
