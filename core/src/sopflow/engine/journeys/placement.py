"""Automatic placement and what entering a stage starts (its entry SOP, its reminders).

Placement rule, the same at event time and in a sync:

* the stages whose entry rules match are found on the customer's current data;
  the **furthest** of them (highest position) wins;
* a customer moves only **forward** unless the journey allows moving backward;
  a customer whom no rule matches stays where they are (stages are sticky);
* journeys that are not active, or whose automation switch is off, place nobody
  automatically; staff still move customers by hand (``cause`` manual/api).

Entering a stage (by any cause) ends the reminders of the stage left, then
enrols the customer into the stage's hidden reminder SOP and its entry SOP.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sopflow.conditions import CustomerSnapshot, evaluate
from sopflow.config_cache import cached, frozen_copy
from sopflow.engine.journeys.manage import stage_rules
from sopflow.engine.journeys.pipelines import move_customer, stages_of
from sopflow.engine.sops.enrolment import ACTIVE, SopRuntime, enroll, parse_saved
from sopflow.engine.sops.lifecycle import end_enrollment, rearm
from sopflow.models import (
    Customer,
    CustomerStage,
    Enrollment,
    Journey,
    JourneyStage,
    Sop,
    SopVersion,
    Stage,
    Touch,
)
from sopflow.models.touch_status import TouchStatus, check_move


def target_stage(
    rules: list[tuple[Stage, Any]],
    positions: Mapping[str, int],
    snapshot: CustomerSnapshot,
    now: datetime,
    journey: Journey,
) -> Stage | None:
    """The stage the customer should move to, or ``None`` to stay put.
    ``rules`` are (stage, parsed rule), furthest first; ``positions`` maps every
    stage name of the journey to its position."""
    current = snapshot.stages.get(journey.pipeline_id)
    for stage, rule in rules:
        if evaluate(rule, snapshot, now):
            if stage.name == current:
                return None
            if current is not None and not journey.allow_backward and stage.position <= positions[current]:
                return None
            return stage
    return None


def place(
    session: Session,
    tenant_id: int,
    customer: Customer,
    snapshot: CustomerSnapshot,
    now: datetime,
    fields: Mapping[str, Any],
    event: Mapping[str, Any],
) -> int:
    """Move the customer in every active, automated journey; returns the moves."""
    moved = 0
    for journey, rules, positions in automated_journeys(session, tenant_id, fields):
        target = target_stage(rules, positions, snapshot, now, journey)
        if target is None:
            continue
        if move_customer(
            session,
            tenant_id,
            customer.id,
            target,
            "rule",
            now,
            causation_id=event.get("id"),
            depth=int(event.get("depth", 0)) + 1,
        ):
            moved += 1
    return moved


def automated_journeys(
    session: Session, tenant_id: int, fields: Mapping[str, Any]
) -> tuple[tuple[Journey, list[tuple[Stage, Any]], dict[str, int]], ...]:
    """Every active, automated journey with its parsed stage rules and positions,
    from the tenant's configuration cache (read-only: shared by transactions)."""

    def load() -> tuple[tuple[Journey, list[tuple[Stage, Any]], dict[str, int]], ...]:
        journeys = session.scalars(
            sa.select(Journey)
            .where(Journey.tenant_id == tenant_id, Journey.status == "active", Journey.automation.is_(True))
            .order_by(Journey.id)
        )
        out = []
        for journey in journeys:
            rules, positions = parsed_stage_rules(session, journey, fields)
            out.append((frozen_copy(journey), [(frozen_copy(st), rule) for st, rule in rules], positions))
        return tuple(out)

    return cached(session, tenant_id, "automated_journeys", load)


def parsed_stage_rules(
    session: Session, journey: Journey, fields: Mapping[str, Any]
) -> tuple[list[tuple[Stage, Any]], dict[str, int]]:
    """(stage, parsed rule) furthest first, and every stage's position by name."""
    positions = {st.name: st.position for st in stages_of(session, journey.pipeline_id)}
    return [(stage, parse_saved(rule, fields)) for stage, rule in stage_rules(session, journey)], positions


def on_stage_entered(
    session: Session,
    tenant_id: int,
    customer: Customer,
    payload: Mapping[str, Any],
    now: datetime,
    fields: Mapping[str, Any],
    *,
    tenant_timezone: str,
    depth: int,
    from_sync: bool = False,
) -> int:
    """Effects of a ``stage.changed`` event; idempotent (safe to run twice).
    Returns how many enrolments it made."""
    pipeline_id, stage_id = payload.get("pipeline_id"), payload.get("stage_id")
    journey = session.scalar(
        sa.select(Journey).where(Journey.pipeline_id == pipeline_id, Journey.tenant_id == tenant_id)
    )
    if journey is None:
        return 0
    settings = list(session.scalars(sa.select(JourneyStage).where(JourneyStage.journey_id == journey.id)))
    hidden = {js.reminder_sop_id: js.stage_id for js in settings if js.reminder_sop_id}
    current = session.get(CustomerStage, (customer.id, pipeline_id))
    here = current.stage_id if current else None
    # reminders of a stage the customer no longer stands in are not sent
    for enrollment in session.scalars(
        sa.select(Enrollment).where(
            Enrollment.customer_id == customer.id,
            Enrollment.status == ACTIVE,
            Enrollment.sop_id.in_(list(hidden) or [-1]),
        )
    ):
        if hidden[enrollment.sop_id] != here:
            end_enrollment(session, enrollment, "ended_early", "left_stage", now, fields)
    if journey.status != "active" or here != stage_id:
        return 0
    js = next((x for x in settings if x.stage_id == stage_id), None)
    if js is None:
        return 0
    enrolled = 0
    for sop_id in (js.reminder_sop_id, js.entry_sop_id):
        sop = session.get(Sop, sop_id) if sop_id else None
        if sop is None or sop.status != "started":
            continue
        version = session.scalar(
            sa.select(SopVersion).where(
                SopVersion.sop_id == sop.id, SopVersion.version == sop.current_version
            )
        )
        runtime = SopRuntime(sop, version, fields)
        if runtime.definition.get("reentry"):
            rearm(session, sop.id, customer.id)  # entering the stage again is the new edge
        enrollment = enroll(session, runtime, customer, now, tenant_timezone=tenant_timezone, depth=depth)
        if enrollment is None:
            continue
        enrolled += 1
        if from_sync and sop_id == js.reminder_sop_id and runtime.definition["journey"]["follow_up"]:
            _skip_follow_up(session, enrollment)
    return enrolled


#: a sync places the customer past the "follow up now" notice
_PLACED = check_move(TouchStatus.SCHEDULED, TouchStatus.SKIPPED)


def _skip_follow_up(session: Session, enrollment: Enrollment) -> None:
    """A sync places many customers at once: no "follow up now" notice for each."""
    session.execute(
        sa.update(Touch)
        .where(
            Touch.enrollment_id == enrollment.id, Touch.step_index == 0, Touch.status == TouchStatus.SCHEDULED
        )
        .values(status=_PLACED, outcome={"reason": "placed_by_sync"})
    )
