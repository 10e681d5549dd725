"""The evaluate step: what one event does to its customer, on top of every
engine package.  In order: enrolments whose early-end rule now holds end; a
stage change enters the stage's SOP; a message marks replies and runs keyword
rules; goals record conversions; journeys place the customer; SOPs whose entry
rule now holds enrol them.  The runtime calls ``evaluate_events`` once per
batch of stored events (a worker, or inline in the embedded mode and the
tests), all in one transaction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.orm import Session

from sopflow.conditions import snapshot_customer
from sopflow.engine.context import EngineContext
from sopflow.engine.customers.evaluation_marks import mark_evaluated
from sopflow.engine.customers.fields import field_definitions
from sopflow.engine.journeys.placement import on_stage_entered, place
from sopflow.engine.keywords.apply import on_message
from sopflow.engine.sops.enrolment import ACTIVE, enroll, runtimes_for, staff_of, tenant_timezone
from sopflow.engine.sops.lifecycle import (
    end_actions,
    end_enrollment,
    mark_conversions,
    mark_replied,
    rearm,
    runtime_of,
)
from sopflow.event_collector import collecting
from sopflow.logging import get_logger
from sopflow.models import Customer, Enrollment, Touch
from sopflow.models.touch_status import TouchStatus

log = get_logger("sopflow.engine")

#: Event types that record what automation did without changing customer data;
#: the evaluate step skips them (rules counting them are re-evaluated at the next change).
OBSERVATIONAL = frozenset({"touch.sent"})

#: The counts of an event evaluated before (a re-sent message, the sweep racing a worker).
ALREADY_EVALUATED = {"ended": 0, "enrolled": 0, "replied": 0, "converted": 0, "keyword_rules": 0}


@attrs.frozen
class Evaluation:
    """What evaluating one event did: counts for logs and tests, the events it
    caused (to announce in turn), and whether a new enrolment has a touch due now."""

    counts: dict[str, int]
    caused: list[Any]
    due_now: bool


def evaluate_events(
    ctx: EngineContext, tenant_id: int, events: Sequence[Mapping[str, Any]]
) -> list[Evaluation]:
    """Evaluate ``events`` in order, in one transaction (one commit and one
    configuration read for a batch an ingest stored together); each event is a
    no-op when it was evaluated before.  All or nothing: when one fails nothing
    is marked, and the caller evaluates them one by one."""
    if all(e.get("type") in OBSERVATIONAL for e in events):
        return [Evaluation({}, [], False) for _ in events]
    outcomes: list[tuple[dict[str, int], bool, int]] = []  # counts, due now, where its caused events start
    with collecting() as caused, ctx.tx() as s:
        now = ctx.now()
        fields = field_definitions(s, tenant_id, ctx.plugins)
        for event in events:
            start = len(caused)
            if event.get("type") in OBSERVATIONAL:
                outcomes.append(({}, False, start))
            else:
                outcomes.append((*_evaluate_one(ctx, s, tenant_id, event, now, fields), start))
    ends = [start for _, _, start in outcomes[1:]] + [len(caused)]
    return [
        Evaluation(counts, [ev for ev in caused[start:end] if ev.id is not None], due_now)
        for (counts, due_now, start), end in zip(outcomes, ends, strict=True)
    ]


def _evaluate_one(
    ctx: EngineContext,
    s: Session,
    tenant_id: int,
    event: Mapping[str, Any],
    now: datetime,
    fields: Mapping[str, Any],
) -> tuple[dict[str, int], bool]:
    """One event's evaluation in the batch's transaction: its counts, and whether
    a new enrolment has a touch due now."""
    if event.get("id") is not None and not mark_evaluated(s, event["id"], now):
        return dict(ALREADY_EVALUATED, already_evaluated=1), False
    counts = evaluate_customer(s, tenant_id, event, now, fields, ctx.settings.loop_guard_depth)
    due_now = bool(counts["enrolled"] or counts.get("stage_enrolled")) and (
        s.scalar(
            sa.select(Touch.id)
            .where(
                Touch.customer_id == event["customer_id"],
                Touch.status == TouchStatus.SCHEDULED,
                Touch.due_at <= now,
            )
            .limit(1)
        )
        is not None
    )
    return counts, due_now


def evaluate_customer(
    session: Session,
    tenant_id: int,
    event: Mapping[str, Any],
    now: datetime,
    fields: Mapping[str, Any],
    loop_guard_depth: int,
) -> dict[str, int]:
    """Evaluate one customer after ``event``.  Returns counts for logs and tests."""
    counts = {"ended": 0, "enrolled": 0, "replied": 0, "converted": 0}
    customer_id = event.get("customer_id")
    if customer_id is None:
        return counts
    if event.get("depth", 0) > loop_guard_depth:
        log.warning(
            "loop_guard_stopped", event_id=event.get("id"), depth=event.get("depth"), limit=loop_guard_depth
        )
        return counts
    customer = session.get(Customer, customer_id)
    if customer is None or customer.merged_into_id is not None:
        return counts
    tz = tenant_timezone(session, tenant_id)
    snapshot = snapshot_customer(session, customer, tz)
    occurred = datetime.fromisoformat(event["occurred_at"]) if event.get("occurred_at") else now

    counts["ended"] = _end_early(session, customer, snapshot, now, fields)

    counts["stage_enrolled"] = counts["moved"] = 0
    if event.get("type") == "stage.changed":
        counts["stage_enrolled"] = on_stage_entered(
            session,
            tenant_id,
            customer,
            event.get("payload") or {},
            now,
            fields,
            tenant_timezone=tz,
            depth=int(event.get("depth", 0)) + 1,
        )

    if event.get("type") == "message.received":
        counts["replied"] = mark_replied(session, customer.id, occurred)
        counts["keyword_rules"] = on_message(session, customer, event, now, fields)
    counts["converted"] = mark_conversions(session, customer, event, snapshot, now, fields)

    # a move staff made by hand stands until the customer's data next changes
    by_hand = event.get("type") == "stage.changed" and (event.get("payload") or {}).get("cause") in (
        "manual",
        "api",
    )
    if not by_hand:
        counts["moved"] = place(session, tenant_id, customer, snapshot, now, fields, event)

    counts["enrolled"] = _enter_sops(session, tenant_id, customer, event, snapshot, now, fields, tz)
    session.flush()
    return counts


def _end_early(
    session: Session, customer: Customer, snapshot: Any, now: datetime, fields: Mapping[str, Any]
) -> int:
    """End the customer's active enrolments whose early-end rule now holds; returns how many."""
    ended = 0
    active = list(
        session.scalars(
            sa.select(Enrollment).where(Enrollment.customer_id == customer.id, Enrollment.status == ACTIVE)
        )
    )
    for enrollment in active:
        runtime = runtime_of(session, enrollment, fields)
        if runtime.ends_early(snapshot, now):
            end_enrollment(
                session,
                enrollment,
                "ended_early",
                "early_end_rule",
                now,
                fields,
                **end_actions(runtime.definition, "on_early_end"),
            )
            ended += 1
    return ended


def _enter_sops(
    session: Session,
    tenant_id: int,
    customer: Customer,
    event: Mapping[str, Any],
    snapshot: Any,
    now: datetime,
    fields: Mapping[str, Any],
    tz: str,
) -> int:
    """Enrol the customer in every started SOP whose target they now match (a
    new-customer SOP only on ``customer.added``); re-arm the re-entry of those they
    no longer match.  Returns how many enrolled."""
    enrolled = 0
    depth = int(event.get("depth", 0))
    staff_ids: set[str] | None = None
    for runtime in runtimes_for(session, tenant_id, fields):
        if runtime.sop.kind == "new_customer" and event.get("type") != "customer.added":
            continue
        if runtime.staff and staff_ids is None:  # read only for an SOP that targets staff
            staff_ids = staff_of(session, customer)
        if runtime.targets(snapshot, staff_ids or set(), now):
            if enroll(session, runtime, customer, now, tenant_timezone=tz, depth=depth, snapshot=snapshot):
                enrolled += 1
        elif runtime.definition.get("reentry"):
            rearm(session, runtime.sop.id, customer.id)
    return enrolled
