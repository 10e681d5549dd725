"""Dramatiq actors for the runtime's jobs, bound to one app and one broker.

Each actor is a closure over its app, so two apps in one test process never
cross.  Installing them points the app's ``enqueue`` at the broker."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import dramatiq

from sopflow.engine.delivery.dispatch import deliver, dispatch_due
from sopflow.engine.sops.manage import advance_audiences
from sopflow.host import run_job
from sopflow.outages import retried_later
from sopflow.worker.broker import make_broker
from sopflow.worker.runtime import evaluate, evaluate_batch, install_inline

if TYPE_CHECKING:  # the app is built above the runtime and hands itself in
    from sopflow.app import SopflowApp


def install(app: SopflowApp, broker: dramatiq.Broker) -> None:
    """Bind the actors to ``broker`` and to ``app``; jobs go to the broker from now on."""
    app.broker = broker

    def quietly(what: str) -> Any:
        """An outage is retried with back-off and logged once per interval."""
        return retried_later(lambda exc, _dep: app.failures.report(what, exc))

    def evaluate_actor(tenant_id: int, event: dict[str, Any]) -> None:  # queued by a version before batches
        with quietly("evaluate_failed"):
            evaluate(app, tenant_id, event, deliver_now=True)

    def evaluate_batch_actor(tenant_id: int, events: list[dict[str, Any]]) -> None:
        with quietly("evaluate_failed"):  # retries exhausted: the sweep evaluates them
            evaluate_batch(app, tenant_id, events, deliver_now=True)

    def deliver_actor(touch_id: int) -> None:  # messages queued by a version before batches
        with quietly("deliver_failed"):
            deliver(app, [touch_id])

    def deliver_batch_actor(touch_ids: list[int]) -> None:
        with quietly("deliver_failed"):
            deliver(app, touch_ids)

    def audience_actor(tenant_id: int, sop_id: int) -> None:
        advance_audiences(app)

    def dispatch_actor() -> None:  # messages queued by a version that woke a dispatch round per enrolment
        dispatch_due(app)

    def plugin_job(name: str, kwargs: dict[str, Any], job_id: int | None = None) -> None:
        run_job(app, name, kwargs, job_id)

    def actor(fn: Any, name: str, retries: int = 0, **options: Any) -> None:
        if "retry_when" not in options:
            options["max_retries"] = retries
        dramatiq.actor(fn, actor_name=name, broker=broker, queue_name="sopflow", **options)

    actor(evaluate_actor, "evaluate_event", 10)
    actor(evaluate_batch_actor, "evaluate_events", 10)
    # deliver is retried by Dramatiq only when a dependency was down (``Retry``): the
    # touch rows decide what is still to send (only ``claimed`` touches are prepared),
    # so a retried or redelivered message cannot double-send.
    actor(deliver_actor, "deliver", retry_when=_outage_retry)
    actor(deliver_batch_actor, "deliver_batch", retry_when=_outage_retry, max_backoff=30_000)
    actor(dispatch_actor, "dispatch_due", 0)
    actor(audience_actor, "audience", 3)
    actor(plugin_job, "plugin_job", 5)

    def enqueue(name: str, *args: Any) -> None:
        broker.actors[name].send(*args)

    app.enqueue = enqueue


#: A delivery message is retried this many times across an outage (about ten
#: minutes with back-off capped at 30 s), then its claims wait out their lease.
OUTAGE_RETRIES = 25


def _outage_retry(retries: int, exc: BaseException) -> bool:
    return isinstance(exc, dramatiq.Retry) and retries < OUTAGE_RETRIES


def uninstall(app: SopflowApp) -> None:
    """Back to running jobs inline (tests that used a broker for a while)."""
    app.broker = None
    install_inline(app)


def enqueue_only(app: SopflowApp) -> SopflowApp:
    """For an API process: with Redis (``SOPFLOW_REDIS_URL``) it only enqueues —
    the evaluate step after each event and plugin jobs go to the workers (and
    the worker that enrols a customer wakes the dispatch) instead of running
    inside the request.  Without Redis nothing changes: they run inline."""
    if app.settings.redis_url:
        install(app, make_broker(app.settings))
    return app
