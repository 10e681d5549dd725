"""Handing due touches to delivery: claim them (``claim``), give each batch
to a worker through the context's ``enqueue`` (``dispatch_due``), deliver a
batch and announce what it caused (``deliver``).  The scheduler's loop and the
actors live in ``sopflow.worker``; without a broker ``enqueue`` runs inline."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sopflow.engine.context import EngineContext
from sopflow.engine.customers.ingest import event_to_dict
from sopflow.engine.delivery.claim import claim_due_touches, daily_channel_caps
from sopflow.engine.delivery.claim_release import release_claims
from sopflow.engine.delivery.deliver import deliver_touches
from sopflow.engine.delivery.period_caps import period_channel_caps
from sopflow.event_collector import collecting
from sopflow.logging import get_logger
from sopflow.outages import BROKER, DependencyUnavailable, dependency_of

log = get_logger("sopflow.runner")


def claim(ctx: EngineContext, limit: int, customer_id: int | None = None) -> list[int]:
    """Claim up to ``limit`` due touches (of one customer when given) under a lease."""
    if ctx.channel_caps is None:
        ctx.channel_caps = daily_channel_caps(ctx.plugins.registry)
    if ctx.period_caps is None:
        ctx.period_caps = period_channel_caps(ctx.plugins.registry)
    with ctx.tx() as s:
        return claim_due_touches(
            s,
            ctx.now(),
            limit,
            timedelta(seconds=ctx.settings.claim_lease_seconds),
            max_in_flight=ctx.settings.max_in_flight,
            channel_caps=ctx.channel_caps,
            customer_id=customer_id,
            period_caps=ctx.period_caps,
        )


def dispatch_due(ctx: EngineContext, limit: int = 500) -> int:
    """Claim due touches and hand them to deliver workers in batches of
    ``SOPFLOW_DELIVER_BATCH`` (one job per batch).  Returns how many.

    Should a hand-off to the broker fail, the claims not handed off are released
    at once (``claim_release``) and ``DependencyUnavailable`` is raised: the
    caller stops claiming until the broker is back."""
    ids = claim(ctx, limit)
    size = ctx.settings.deliver_batch
    chunks = [ids[i : i + size] for i in range(0, len(ids), size)]
    for n, chunk in enumerate(chunks):
        try:
            ctx.enqueue("deliver_batch", chunk)
        except Exception as exc:
            if dependency_of(exc) != BROKER:
                raise  # delivering inline failed: the touches keep their claims and leases
            unsent = [t for rest in chunks[n:] for t in rest]
            with ctx.tx() as s:
                release_claims(s, unsent)
            raise DependencyUnavailable(BROKER, f"{len(unsent)} claims released: {exc}") from exc
    return len(ids)


def deliver(ctx: EngineContext, touch_ids: Sequence[int]) -> dict[int, str]:
    """Deliver claimed touches, then announce the events delivery caused
    (``touch.sent``, data actions' changes) tenant by tenant."""
    with collecting() as caused:
        statuses = deliver_touches(ctx, list(touch_ids))
    stored = [ev for ev in caused if ev.id is not None]
    for tenant_id in dict.fromkeys(ev.tenant_id for ev in stored):
        ctx.announce(tenant_id, [event_to_dict(ev) for ev in stored if ev.tenant_id == tenant_id])
    return statuses


def deliver_due_now(ctx: EngineContext, customer_id: int) -> None:
    """A new enrolment has a touch due at once (a welcome, a first step with no
    delay): claim this customer's due touches and deliver them here, in the worker
    that enrolled the customer — not at the scheduler's next tick (up to
    ``SOPFLOW_SCHEDULER_INTERVAL`` later), nor through a dispatch message and a
    deliver message (two more queue hops, each up to a poll interval).  The claim
    is the scheduler's, so caps, batch windows, quiet hours and leases hold; should
    anything here fail, the touch stays due (or claimed until its lease ends) and
    the scheduler takes it."""
    try:
        ids = claim(ctx, ctx.settings.deliver_batch, customer_id)
        if ids:
            deliver(ctx, ids)
    except Exception as exc:
        ctx.failures.report("deliver_due_now_failed", exc, customer_id=customer_id)


def run_until_idle(ctx: EngineContext, max_rounds: int = 1000) -> int:
    """Dispatch until nothing is due at the current clock (tests, demo, CLI)."""
    total = 0
    for _ in range(max_rounds):
        n = dispatch_due(ctx)
        total += n
        if n == 0:
            return total
    raise RuntimeError("dispatch did not settle; a step keeps re-scheduling itself")
