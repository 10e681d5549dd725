"""Glue between the engine and the runtime: the evaluate step after each event,
and the dispatch loop.  With a broker installed work goes through Dramatiq
actors; without one (the CLI, the deterministic tests) it runs inline."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sopflow_sdk import SkippableError, SopflowError

from sopflow.engine.claim_release import release_claims
from sopflow.engine.deliver import deliver_touches
from sopflow.engine.dispatch import claim_due_touches, daily_channel_caps
from sopflow.engine.evaluation_marks import mark_evaluated
from sopflow.engine.fields import field_definitions
from sopflow.engine.ingest import event_to_dict
from sopflow.engine.lifecycle import on_customer_event
from sopflow.engine.sends import channel_for
from sopflow.engine.sops import compute_audience
from sopflow.event_collector import collecting
from sopflow.failure_log import failure_log
from sopflow.handoff import send_after_commit
from sopflow.logging import get_logger
from sopflow.models import Enrollment, Sop, SopVersion, Touch
from sopflow.outages import BROKER, DependencyUnavailable, retried_later

log = get_logger("sopflow.runner")


#: Event types that record what automation did without changing customer data;
#: the evaluate step skips them (rules counting them are re-evaluated at the next change).
OBSERVATIONAL = frozenset({"touch.sent"})


#: What ``evaluate_event`` returns for an event evaluated before (a re-sent message).
ALREADY_EVALUATED = {"ended": 0, "enrolled": 0, "replied": 0, "converted": 0, "keyword_rules": 0}


def process_event(app: Any, tenant_id: int, event: dict[str, Any]) -> None:
    """Evaluate ``event`` after its commit: through the broker, else inline.
    Never raises: the stored event (``evaluated_at`` NULL) is the durable record
    of the work, and the scheduler's sweep evaluates what this could not."""
    if event.get("type") in OBSERVATIONAL:
        return
    if app.broker is not None:
        send_after_commit(app, "evaluate_event", tenant_id, event, what="evaluate")
        return
    try:
        evaluate_event(app, tenant_id, event)
    except Exception as exc:
        failure_log(app).report("evaluate_failed", exc, event_id=event.get("id"))


def evaluate_event(app: Any, tenant_id: int, event: dict[str, Any]) -> dict[str, int]:
    """The evaluate step for one stored event; a no-op when it ran before."""
    with collecting() as caused, app.tx() as s:
        now = app.now()
        if event.get("id") is not None and not mark_evaluated(s, event["id"], now):
            return dict(ALREADY_EVALUATED, already_evaluated=1)
        fields = field_definitions(s, tenant_id, app.plugins)
        counts = on_customer_event(s, tenant_id, event, now, fields, app.settings.loop_guard_depth)
        due_now = (
            app.broker is not None
            and (counts["enrolled"] or counts.get("stage_enrolled"))
            and s.scalar(
                sa.select(Touch.id)
                .where(
                    Touch.customer_id == event["customer_id"],
                    Touch.status == "scheduled",
                    Touch.due_at <= now,
                )
                .limit(1)
            )
            is not None
        )
    announce(app, tenant_id, caused)  # stage moves made by end actions etc. feed the evaluate step again
    if due_now:
        deliver_due_now(app, event["customer_id"])
    return counts


def deliver_due_now(app: Any, customer_id: int) -> None:
    """A new enrolment has a touch due at once (a welcome, a first step with no
    delay): claim this customer's due touches and deliver them here, in the worker
    that enrolled the customer — not at the scheduler's next tick (up to
    ``SOPFLOW_SCHEDULER_INTERVAL`` later), nor through a dispatch message and a
    deliver message (two more queue hops, each up to a poll interval).  The claim
    is the scheduler's, so caps, batch windows, quiet hours and leases hold; should
    anything here fail, the touch stays due (or claimed until its lease ends) and
    the scheduler takes it."""
    try:
        ids = claim(app, app.settings.deliver_batch, customer_id)
        if ids:
            deliver(app, ids)
    except Exception as exc:
        failure_log(app).report("deliver_due_now_failed", exc, customer_id=customer_id)


def announce(app: Any, tenant_id: int, events: list[Any]) -> None:
    events = [ev for ev in events if ev.id is not None]
    if not events:
        return
    with app.tx() as s:
        off = app.disabled_plugins(s, tenant_id)
    for ev in events:
        app.notify_event(tenant_id, event_to_dict(ev), off)


def dispatch_due(app: Any, limit: int = 500) -> int:
    """Claim due touches and hand them to deliver workers in batches of
    ``SOPFLOW_DELIVER_BATCH`` (one message per batch).  Returns how many.

    Should a hand-off fail, the claims not handed off are released at once
    (``claim_release``) and ``DependencyUnavailable`` is raised: the caller stops
    claiming until the broker is back."""
    ids = claim(app, limit)
    size = app.settings.deliver_batch
    chunks = [ids[i : i + size] for i in range(0, len(ids), size)]
    for n, chunk in enumerate(chunks):
        if app.broker is None:
            deliver(app, chunk)
            continue
        try:
            app.broker.actors["deliver_batch"].send(chunk)
        except Exception as exc:
            unsent = [t for rest in chunks[n:] for t in rest]
            with app.tx() as s:
                release_claims(s, unsent)
            raise DependencyUnavailable(BROKER, f"{len(unsent)} claims released: {exc}") from exc
    return len(ids)


def claim(app: Any, limit: int, customer_id: int | None = None) -> list[int]:
    with app.tx() as s:
        return claim_due_touches(
            s,
            app.now(),
            limit,
            timedelta(seconds=app.settings.claim_lease_seconds),
            max_in_flight=app.settings.max_in_flight,
            channel_caps=app.__dict__.setdefault("_channel_caps", daily_channel_caps(app.plugins.registry)),
            customer_id=customer_id,
        )


def deliver(app: Any, touch_ids: list[int]) -> dict[int, str]:
    with collecting() as caused:
        statuses = deliver_touches(app, touch_ids)
    for tenant_id in dict.fromkeys(ev.tenant_id for ev in caused):
        announce(app, tenant_id, [ev for ev in caused if ev.tenant_id == tenant_id])
    return statuses


def run_until_idle(app: Any, max_rounds: int = 1000) -> int:
    """Dispatch until nothing is due at the current clock (tests, demo, CLI)."""
    total = 0
    for _ in range(max_rounds):
        n = dispatch_due(app)
        total += n
        if n == 0:
            return total
    raise RuntimeError("dispatch did not settle; a step keeps re-scheduling itself")


def advance_audiences(app: Any) -> int:
    """One batch of every nurture SOP whose audience is still being computed."""
    with app.tx() as s:
        pending = list(
            s.execute(sa.select(Sop.tenant_id, Sop.id).where(Sop.status == "started", Sop.kind == "nurture"))
        )
    moved = 0
    for tenant_id, sop_id in pending:
        with app.tx() as s:
            sop = s.get(Sop, sop_id)
            if sop is None or (sop.audience or {}).get("state") not in ("pending", "running"):
                continue
            compute_audience(s, app, tenant_id, sop_id, app.now())
            moved += 1
    return moved


def poll_confirmations(app: Any, limit: int = 200) -> int:
    """Touches waiting for staff confirmation (``pending``): ask the channel.

    One transaction reads the pending touches with their step definitions and
    channels; the channel calls happen outside it; each touch that reached a final
    status is then updated under its row lock (``pending`` still)."""
    with app.tx() as s:
        rows = list(
            s.execute(
                sa.select(
                    Touch.id,
                    Touch.tenant_id,
                    Touch.customer_id,
                    Touch.step_index,
                    Touch.outcome,
                    SopVersion.definition,
                )
                .join(Enrollment, Enrollment.id == Touch.enrollment_id)
                .join(SopVersion, SopVersion.id == Enrollment.sop_version_id)
                .where(Touch.status == "pending")
                .order_by(Touch.id)
                .limit(limit)
            )
        )
        channels: dict[tuple[int, str], Any] = {}
        for _, tenant_id, _, step_index, outcome, definition in rows:
            for ref in outcome.get("results", []):
                name = definition["steps"][step_index]["actions"][ref["action"]]["channel"]
                if (tenant_id, name) not in channels:
                    try:
                        channels[tenant_id, name] = channel_for(app, tenant_id, name, s)[0]
                    except SopflowError:  # account removed since the send: its touches wait
                        log.warning("poll_channel_missing", tenant_id=tenant_id, channel=name)
                        channels[tenant_id, name] = None
    finals: dict[int, str] = {}
    for touch_id, tenant_id, customer_id, step_index, outcome, definition in rows:
        refs = [r for r in outcome.get("results", []) if r.get("provider_ref") and r["status"] == "pending"]
        if not refs:
            continue
        try:
            statuses = []
            for ref in refs:
                name = definition["steps"][step_index]["actions"][ref["action"]]["channel"]
                if channels[tenant_id, name] is None:
                    raise SkippableError(f"no {name} channel account to poll")
                result = channels[tenant_id, name].poll(ref["provider_ref"])
                statuses.append(_recipient_status(result, customer_id))
        except Exception:
            log.exception("poll_failed", touch_id=touch_id)
            continue
        final = "failed" if "failed" in statuses else ("sent" if all(x == "sent" for x in statuses) else None)
        if final:
            finals[touch_id] = final
    if not finals:
        return 0
    changed = 0
    with app.tx() as s:
        for touch_id, final in finals.items():
            fresh = s.get(Touch, touch_id, with_for_update=True)
            if fresh.status == "pending":
                fresh.status = final
                fresh.outcome = {**fresh.outcome, "confirmed": final, "confirmed_at": app.now().isoformat()}
                changed += 1
    return changed


def _recipient_status(result: dict[str, str], customer_id: int) -> str:
    """A poll maps recipients to statuses; one touch has one customer."""
    values = set(result.values())
    if "failed" in values:
        return "failed"
    if values and values <= {"sent"}:
        return "sent"
    return "pending"


def install_actors(app: Any, broker: Any) -> None:
    import dramatiq

    def quietly(what: str) -> Any:
        """An outage is retried with back-off and logged once per interval."""
        return retried_later(lambda exc, _dep: failure_log(app).report(what, exc))

    def evaluate(tenant_id: int, event: dict[str, Any]) -> None:
        with quietly("evaluate_failed"):  # retries exhausted: the sweep evaluates it
            evaluate_event(app, tenant_id, event)

    def deliver_actor(touch_id: int) -> None:  # messages queued by a version before batches
        with quietly("deliver_failed"):
            deliver(app, [touch_id])

    def deliver_batch_actor(touch_ids: list[int]) -> None:
        with quietly("deliver_failed"):
            deliver(app, touch_ids)

    def audience(tenant_id: int, sop_id: int) -> None:
        advance_audiences(app)

    def dispatch() -> None:  # messages queued by a version that woke a dispatch round per enrolment
        dispatch_due(app)

    dramatiq.actor(evaluate, actor_name="evaluate_event", broker=broker, queue_name="sopflow", max_retries=10)
    # deliver is retried by Dramatiq only when a dependency was down (``Retry``): the
    # touch rows decide what is still to send (only ``claimed`` touches are prepared),
    # so a retried or redelivered message cannot double-send.
    dramatiq.actor(
        deliver_actor, actor_name="deliver", broker=broker, queue_name="sopflow", retry_when=_outage_retry
    )
    dramatiq.actor(
        deliver_batch_actor,
        actor_name="deliver_batch",
        broker=broker,
        queue_name="sopflow",
        retry_when=_outage_retry,
        max_backoff=30_000,
    )
    dramatiq.actor(dispatch, actor_name="dispatch_due", broker=broker, queue_name="sopflow", max_retries=0)
    dramatiq.actor(audience, actor_name="audience", broker=broker, queue_name="sopflow", max_retries=3)


#: A delivery message is retried this many times across an outage (about ten
#: minutes with back-off capped at 30 s), then its claims wait out their lease.
OUTAGE_RETRIES = 25


def _outage_retry(retries: int, exc: BaseException) -> bool:
    import dramatiq

    return isinstance(exc, dramatiq.Retry) and retries < OUTAGE_RETRIES
