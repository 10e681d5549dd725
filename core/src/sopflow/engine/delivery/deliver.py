"""Deliver claimed touches, a batch at a time: re-check, render, call, record.

Short transactions so no database lock is held during a channel call:
(1) one transaction re-checks every touch of the batch (enrolment still
active, early-end rule, reply gate), runs the data actions, renders, and
marks the touches ``sending``; (2) the channel calls; (3) one transaction
records the outcomes, emits ``touch.sent`` and ends the enrolments whose last
step this was.  What one batch needs (enrolments, customers, staff,
identities, field definitions, parsed SOP versions) is loaded once.

A channel whose send is not idempotent is never retried after an ambiguous
failure: the touch goes to ``review``.  So that a crash can only make the
touch being called ambiguous — not the rest of its batch — such touches are
marked ``sending`` one at a time, in the same transaction that records the
one before (still one transaction per touch instead of three).  Touches on
idempotent channels are marked together: after a crash they are re-sent
with the same idempotency key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from time import monotonic
from typing import Any

import sqlalchemy as sa
from sopflow_sdk import SkippableError, SopflowError

from sopflow.conditions import parse_duration
from sopflow.engine.context import EngineContext
from sopflow.engine.customers.transfers import OWNER_LEFT
from sopflow.engine.delivery import touch_rows
from sopflow.engine.delivery.batch import DeliveryBatch
from sopflow.engine.delivery.claim import give_back
from sopflow.engine.delivery.outage_retry import retry_through_outage
from sopflow.engine.delivery.outcomes import complete, record
from sopflow.engine.delivery.sends import Outcome, build_sends, call_sends, to_staff
from sopflow.engine.sops.arms import first_of_its_arm
from sopflow.engine.sops.enrolment import ACTIVE
from sopflow.engine.sops.lifecycle import end_actions, end_enrollment
from sopflow.engine.sops.step_actions import changes_data as step_changes_data
from sopflow.logging import get_logger
from sopflow.models import Enrollment, SendQuota, Touch
from sopflow.models.touch_status import TouchStatus
from sopflow.outages import dependency_of

log = get_logger("sopflow.deliver")
#: what ``deliver_touches`` reports for an id with no touch (not a touch state)
MISSING = "missing"
#: how often a touch held because its customer's owner left is looked at again
OWNER_LEFT_RECHECK = timedelta(hours=6)


@dataclass
class Prepared:
    """A touch whose calls are ready: the sends ``build_sends`` made for it, and
    whether its channel de-duplicates (then it is called with the others of its
    batch; else marked ``sending`` on its own right before its call)."""

    touch_id: int
    sends: list[Any]
    idempotent: bool


def deliver_touches(ctx: EngineContext, touch_ids: Sequence[int]) -> dict[int, str]:
    """Deliver a batch of claimed touches; returns each one's status after this attempt.

    A batch whose preparation fails unexpectedly (a bug, not a channel error) is
    retried one touch at a time, so one bad touch cannot hold up the others; the
    bad one stays ``claimed`` until its lease runs out.  A batch that fails because
    the database is down is not: the error goes up and the whole batch is retried
    with back-off (one try against a dead database, not one per touch)."""
    now = ctx.now()
    try:
        statuses, prepared = _prepare(ctx, touch_ids, now)
    except Exception as exc:
        if len(touch_ids) == 1 or dependency_of(exc) is not None:
            raise
        log.exception("deliver_batch_prepare_failed", touches=len(touch_ids))
        out: dict[int, str] = {}
        for touch_id in touch_ids:
            try:
                out.update(deliver_touches(ctx, [touch_id]))
            except Exception:
                log.exception("deliver_prepare_failed", touch_id=touch_id)
        return out
    together = [p for p in prepared if p.idempotent]
    outcomes: list[Outcome] = []
    beat = monotonic()
    for i, p in enumerate(together):
        outcomes.append(call_sends(ctx, p.touch_id, p.sends, True, now))
        if monotonic() - beat > ctx.settings.claim_lease_seconds / 4:
            # a slow channel: record what is done and renew the lease of the rest, so
            # no scheduler takes them for abandoned and sends them again meanwhile
            rest = [q.touch_id for q in together[i + 1 :]]
            statuses.update(_record(ctx, outcomes, renew=rest)[0])
            outcomes, beat = [], monotonic()
    if outcomes:
        statuses.update(_record(ctx, outcomes)[0])
    previous: Outcome | None = None
    for p in (p for p in prepared if not p.idempotent):
        recorded, started = _record(ctx, [previous] if previous else [], start=p.touch_id)
        statuses.update(recorded)
        if not started:  # cancelled since the batch was prepared, or taken over after its lease ran out
            statuses[p.touch_id] = TouchStatus.CANCELLED
            previous = None
            continue
        previous = call_sends(ctx, p.touch_id, p.sends, False, now)
    if previous is not None:
        statuses.update(_record(ctx, [previous])[0])
    return statuses


def _record(ctx: EngineContext, outcomes: Sequence[Outcome], **kwargs: Any) -> tuple[dict[int, str], bool]:
    """``record``, waited through a short database outage: these calls were made."""
    return retry_through_outage(
        lambda: record(ctx, outcomes, **kwargs),
        budget_seconds=ctx.settings.claim_lease_seconds / 4,
        on_outage=lambda exc: ctx.failures.report("deliver_record_failed", exc, touches=len(outcomes)),
    )


def _prepare(
    ctx: EngineContext, touch_ids: Sequence[int], now: datetime
) -> tuple[dict[int, str], list[Prepared]]:
    """Transaction (1): the touches that are to be called, and the status of the rest."""
    statuses: dict[int, str] = {t: MISSING for t in touch_ids}
    prepared: list[Prepared] = []
    with ctx.tx() as s:
        batch = DeliveryBatch(ctx, s, touch_ids)
        finished: set[int] = set()  # enrolments with a touch skipped or failed here: complete?
        for touch in batch.touches:
            change = touch_rows.change_of(touch)
            before = dict(change)
            result = _prepare_one(ctx, batch, touch, change, now, finished)
            if change != before:
                batch.changes.append(change)
            if isinstance(result, Prepared):
                prepared.append(result)
                statuses[touch.id] = TouchStatus.SENDING
            else:
                statuses[touch.id] = result
        batch.write_touches()
        complete(batch, finished, now)
    return statuses, prepared


def _prepare_one(
    ctx: EngineContext,
    batch: DeliveryBatch,
    touch: Any,
    change: dict[str, Any],
    now: datetime,
    finished: set[int],
) -> str | Prepared:
    """Decide one touch (a row); its new columns go to ``change``."""
    s = batch.s
    if touch.status != TouchStatus.CLAIMED:
        return TouchStatus(touch.status)
    enrollment = batch.enrollments[touch.enrollment_id]
    if touch_rows.cancelled_with(enrollment.status, touch.outcome):
        change["status"] = TouchStatus.CANCELLED
        return TouchStatus.CANCELLED
    fields = batch.fields(touch.tenant_id)
    runtime = batch.runtime(enrollment)
    customer = batch.customers[touch.customer_id]
    active = enrollment.status == ACTIVE  # else a re-addressed touch of a completed one
    if active and runtime.early_end is not None and runtime.ends_early(batch.snapshot(customer), now):
        # cancels the open touches, this one too (so ``change`` stays as it is)
        batch.write_touches()
        end_enrollment(
            s,
            enrollment,
            "ended_early",
            "early_end_rule",
            now,
            fields,
            **end_actions(runtime.definition, "on_early_end"),
        )
        return TouchStatus.CANCELLED
    held = _reply_gate(batch, touch, change, runtime.definition, now, enrollment, fields, finished)
    if held:
        return held
    if _owner_left(batch, touch, customer, change, now):
        return TouchStatus.SCHEDULED
    step = runtime.definition["steps"][touch.step_index]
    try:
        sends, idempotent = _build(ctx, batch, touch, step, customer, fields, now, enrollment)
    except SopflowError as exc:
        change["status"] = TouchStatus.SKIPPED if isinstance(exc, SkippableError) else TouchStatus.FAILED
        change["outcome"] = {**change["outcome"], "reason": exc.internal_message}
        _give_back_slot(s, touch, change)  # nothing went out
        finished.add(touch.enrollment_id)
        return change["status"]
    if customer.owner_staff_id and any(to_staff(a) for a in step["actions"]):
        staff = batch.staff[customer.owner_staff_id]  # who was told: on the touch and its touch.sent
        change["outcome"] = {**change["outcome"], "staff": {"id": staff.id, "external_id": staff.external_id}}
    # A non-idempotent touch stays ``claimed`` until the transaction right before its
    # call marks it ``sending`` (see the module docstring).  Should the worker stop in
    # between, the touch is claimed again and prepared again, like a retry.
    change["status"] = TouchStatus.SENDING if idempotent else TouchStatus.CLAIMED
    # the lease starts again: the time the batch waited in the queue is not the calls' time
    change["lease_until"] = now + timedelta(seconds=ctx.settings.claim_lease_seconds)
    change["started_at"] = now  # the hand-off arrived: no longer the broker's to lose
    change["outcome"] = {**change["outcome"], "idempotent": idempotent}
    return Prepared(touch.id, sends, idempotent)


def _owner_left(
    batch: DeliveryBatch, touch: Any, customer: Any, change: dict[str, Any], now: datetime
) -> bool:
    """Hold the touch when the customer's owner left: nobody is there to send it.  A
    transfer of the customer (or the member coming back) makes it due at once; it is
    looked at again now and then meanwhile."""
    owner = batch.staff.get(customer.owner_staff_id) if customer.owner_staff_id else None
    if owner is None or owner.left_at is None:
        return False
    change["status"], change["due_at"] = TouchStatus.SCHEDULED, now + OWNER_LEFT_RECHECK
    change["deferrals"] += 1
    change["defer_reason"] = OWNER_LEFT
    _give_back_slot(batch.s, touch, change)
    return True


def _give_back_slot(s: Any, touch: Any, change: dict[str, Any]) -> None:
    """A touch that took its daily-cap slot at the claim and then sent nothing
    gives the slot back, so the customer's push that day is not lost to it."""
    cap_day = change["outcome"].get("cap_day")
    if cap_day:
        give_back(
            s, SendQuota.__table__, {"customer_id": touch.customer_id, "day": date.fromisoformat(cap_day)}
        )
        change["outcome"] = {k: v for k, v in change["outcome"].items() if k != "cap_day"}


def _build(
    ctx: EngineContext,
    batch: DeliveryBatch,
    touch: Any,
    step: Mapping[str, Any],
    customer: Any,
    fields: Mapping[str, Any],
    now: datetime,
    enrollment: Enrollment,
) -> tuple[list[Any], bool]:
    """The step's sends for one touch and whether they are idempotent (``build_sends``,
    which also runs the step's data actions); raises the ``SopflowError`` that
    keeps the touch from being sent."""
    s = batch.s
    staff = batch.staff.get(customer.owner_staff_id) if customer.owner_staff_id else None
    changes_data = step_changes_data(ctx.plugins.registry, step)
    if changes_data:  # a stage move may end enrolments, whose open touches are then cancelled
        batch.write_touches()
    # a savepoint when the step changes data: a send that cannot even be prepared (no
    # account for the channel, an undeclared touchpoint) must not keep the data actions
    # before it.  Only then: entering one flushes the session, a cost per touch.
    with s.begin_nested() if changes_data else nullcontext():
        sends, idempotent = build_sends(
            ctx,
            s,
            touch,
            step,
            customer,
            staff,
            fields,
            now,
            enrollment,
            batch.identities.get(customer.id, []),
            batch.channels,
        )
    return sends, idempotent


def _reply_gate(
    batch: DeliveryBatch,
    touch: Any,
    change: dict[str, Any],
    definition: Mapping[str, Any],
    now: datetime,
    enrollment: Enrollment,
    fields: Mapping[str, Any],
    finished: set[int],
) -> str | None:
    """Reply wait: a step after a "wait for reply" step waits for a reply or the
    timeout; returns the touch's status when the gate decided it, else None."""
    s = batch.s
    if first_of_its_arm(definition, touch.step_index):
        return None
    wait = definition["steps"][touch.step_index - 1].get("wait_for_reply")
    if not wait:
        return None
    previous = s.execute(
        sa.select(Touch.sent_at, Touch.replied_at).where(
            Touch.enrollment_id == touch.enrollment_id, Touch.step_index == touch.step_index - 1
        )
    ).first()
    if previous is None or previous.sent_at is None:
        return None
    if previous.replied_at is not None:
        if wait["on_reply"] == "end":
            batch.write_touches()
            end_enrollment(
                s,
                enrollment,
                "ended_early",
                "replied",
                now,
                fields,
                **end_actions(definition, "on_early_end"),
            )
            return TouchStatus.CANCELLED
        return None
    deadline = previous.sent_at + parse_duration(wait["timeout"])
    if now < deadline:
        change["status"], change["due_at"] = TouchStatus.SCHEDULED, deadline
        change["deferrals"] += 1
        change["defer_reason"] = "waiting_for_reply"
        return TouchStatus.SCHEDULED
    if wait["on_timeout"] == "skip":
        change["status"] = TouchStatus.SKIPPED
        change["outcome"] = {"reason": "no_reply"}
        finished.add(touch.enrollment_id)
        return TouchStatus.SKIPPED
    return None
