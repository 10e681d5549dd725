"""The jobs the runtime runs, and the inline runtime.

A job is a name and JSON-able arguments; ``EngineContext.enqueue`` runs one.
Inline (the embedded mode without a broker, the CLI, the deterministic tests)
it runs at once in the caller; with a broker (``sopflow.worker.actors``) a
Dramatiq actor of the same name runs it in a worker.  ``announce`` is how
stored events reach plugins' observers and the evaluate step."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sopflow.engine.context import EngineContext
from sopflow.engine.customers.ingest import event_to_dict
from sopflow.engine.delivery.dispatch import deliver, deliver_due_now, dispatch_due
from sopflow.engine.evaluate import OBSERVATIONAL, evaluate_events
from sopflow.engine.sops.manage import complete_audience
from sopflow.host import PluginHost, run_job
from sopflow.outages import dependency_of


def announce(ctx: EngineContext, tenant_id: int, events: list[dict[str, Any]]) -> None:
    """Tell enabled plugins about each stored event (``on_event``, and
    ``on_stage_changed`` for stage moves), then enqueue its evaluate step.

    Called after the events' commit, so it never raises: a stored event with
    ``evaluated_at`` NULL is the durable record of its evaluation, and the
    scheduler's sweep evaluates whatever this could not hand off."""
    if not events:
        return
    if ctx.plugins.observed("on_event", "on_stage_changed"):  # else no read: nobody to tell
        try:
            with ctx.read() as session:
                off = ctx.disabled_plugins(session, tenant_id)
        except Exception as exc:
            ctx.failures.report("announce_failed", exc, tenant_id=tenant_id)
            return
        for event in events:
            try:
                _observe(ctx, tenant_id, event, off)
            except Exception as exc:
                ctx.failures.report("observers_failed", exc, event_id=event.get("id"))
    pending = [event for event in events if event.get("type") not in OBSERVATIONAL]
    for start in range(0, len(pending), EVALUATE_BATCH):
        ctx.enqueue_after_commit("evaluate_events", tenant_id, pending[start : start + EVALUATE_BATCH])


def _observe(ctx: EngineContext, tenant_id: int, event: dict[str, Any], off: set[str]) -> None:
    """Plugins' observers of one event (at most once: they run after the commit)."""
    ctx.plugins.notify(
        "on_event",
        enabled=lambda name: name not in off,
        host_for=lambda name: PluginHost(ctx, name),
        tenant_id=tenant_id,
        event=event,
    )
    if event.get("type") == "stage.changed" and event.get("customer_id") is not None:
        payload = event.get("payload") or {}
        ctx.plugins.notify(
            "on_stage_changed",
            enabled=lambda name: name not in off,
            tenant_id=tenant_id,
            customer_id=event["customer_id"],
            pipeline_id=payload.get("pipeline_id"),
            from_stage=payload.get("from_stage"),
            to_stage=payload.get("to_stage"),
            cause=payload.get("cause", ""),
        )


def evaluate(
    ctx: EngineContext, tenant_id: int, event: Mapping[str, Any], *, deliver_now: bool = False
) -> dict[str, int]:
    """The evaluate step for one stored event (see :func:`evaluate_batch`)."""
    return evaluate_batch(ctx, tenant_id, [event], deliver_now=deliver_now)[0]


def evaluate_batch(
    ctx: EngineContext, tenant_id: int, events: Sequence[Mapping[str, Any]], *, deliver_now: bool = False
) -> list[dict[str, int]]:
    """The evaluate step for stored events, in one transaction, then what they
    caused announced in turn (stage moves made by end actions feed the evaluate
    step again).  With ``deliver_now`` (a worker) a new enrolment's touch due at
    once is delivered here rather than at the scheduler's next tick.

    When the batch fails, each event is evaluated on its own, so one event that
    cannot be evaluated holds back no other; the first failure is raised after
    (a worker retries the message: the events done by then are no-ops)."""
    try:
        results = evaluate_events(ctx, tenant_id, events)
    except Exception as exc:
        if len(events) == 1 or dependency_of(exc) is not None:  # an outage: the retry redoes the batch
            raise
        return _one_by_one(ctx, tenant_id, events, deliver_now)
    ctx.announce(tenant_id, [event_to_dict(ev) for result in results for ev in result.caused])
    if deliver_now:
        for customer_id in dict.fromkeys(
            e["customer_id"] for e, r in zip(events, results, strict=True) if r.due_now
        ):
            deliver_due_now(ctx, customer_id)
    return [result.counts for result in results]


def _one_by_one(
    ctx: EngineContext, tenant_id: int, events: Sequence[Mapping[str, Any]], deliver_now: bool
) -> list[dict[str, int]]:
    counts: list[dict[str, int]] = []
    first: Exception | None = None
    for event in events:
        try:
            counts.append(evaluate(ctx, tenant_id, event, deliver_now=deliver_now))
        except Exception as exc:
            ctx.failures.report("evaluate_failed", exc, event_id=event.get("id"))
            counts.append({})
            first = first or exc
    if first is not None:
        raise first
    return counts


#: Stored events evaluated per transaction at most (one ingest call's events go
#: together; a bigger batch holds its locks longer for little gain).
EVALUATE_BATCH = 100


#: Job name → what runs it inline.  The actors in ``sopflow.worker.actors`` run
#: the same names in workers.
INLINE_JOBS: dict[str, Callable[..., Any]] = {
    "evaluate_event": lambda ctx, tenant_id, event: evaluate(ctx, tenant_id, event),
    "evaluate_events": lambda ctx, tenant_id, events: evaluate_batch(ctx, tenant_id, events),
    "deliver_batch": lambda ctx, touch_ids: deliver(ctx, touch_ids),
    "dispatch_due": lambda ctx: dispatch_due(ctx),
    "audience": lambda ctx, tenant_id, sop_id: complete_audience(ctx, tenant_id, sop_id),
    "plugin_job": lambda ctx, name, kwargs, job_id=None: run_job(ctx, name, kwargs, job_id),
}


def install_inline(ctx: EngineContext) -> None:
    """Run every job at once, in the caller (no broker)."""

    def enqueue(name: str, *args: Any) -> None:
        INLINE_JOBS[name](ctx, *args)

    ctx.enqueue = enqueue
    ctx.announce = lambda tenant_id, events: announce(ctx, tenant_id, events)


__all__ = ["INLINE_JOBS", "announce", "evaluate", "evaluate_batch", "install_inline"]
