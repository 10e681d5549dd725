"""Journeys: a pipeline whose stages have entry rules, an automation
switch, stage reminders and an entry SOP.

A journey owns its pipeline. Saving a journey validates everything at once
(limits, rules against the tenant's fields and the journey's own stage names,
reminders, the entry SOP) and keeps one hidden SOP per stage (kind
``journey_stage``) that delivers the stage's reminders through the normal
touch machinery: schedule, caps, crash safety and per-step stats come free.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sopflow.engine.context import EngineContext
from sopflow.engine.journeys.definition import SETTINGS, check_journey, with_template
from sopflow.engine.journeys.pipelines import stages_of
from sopflow.engine.journeys.reminders import sync_reminder_sop
from sopflow.engine.journeys.rules import as_rule
from sopflow.errors import Conflict, InvalidInput, LimitReached, NotFound
from sopflow.models import (
    CustomerStage,
    Journey,
    JourneyStage,
    JourneySyncTarget,
    Pipeline,
    Sop,
    Stage,
    StageHistory,
)

#: a sync whose heartbeat is older than this is taken to have died with its process
SYNC_STALE = timedelta(minutes=10)


def get_journey(session: Session, tenant_id: int, journey_id: int, *, lock: bool = False) -> Journey:
    """The tenant's journey ``journey_id`` (``lock``: FOR UPDATE), else ``NotFound``."""
    query = sa.select(Journey).where(Journey.id == journey_id, Journey.tenant_id == tenant_id)
    journey = session.scalar(query.with_for_update() if lock else query)
    if journey is None:
        raise NotFound("journey", journey_id)
    return journey


def journey_of_pipeline(session: Session, pipeline_id: int) -> Journey | None:
    """The journey that owns pipeline ``pipeline_id``, if one does."""
    return session.scalar(sa.select(Journey).where(Journey.pipeline_id == pipeline_id))


def sync_running(journey: Journey, now: datetime) -> bool:
    """Whether a sync is placing the journey's customers right now: pending or
    running with a heartbeat younger than ``SYNC_STALE`` (an older one died
    with its process and no longer locks the journey)."""
    sync = journey.sync or {}
    if sync.get("state") not in ("pending", "running"):
        return False
    return datetime.fromisoformat(sync["heartbeat_at"]) > now - SYNC_STALE


def ensure_unlocked(journey: Journey, now: datetime) -> None:
    """The sync lock: no edits while a sync places customers (409 with what is running)."""
    if sync_running(journey, now):
        sync = journey.sync
        raise Conflict(
            f"journey {journey.id} is locked while its sync runs (started {sync.get('started_at')}, "
            f"{sync.get('done', 0)} of {sync.get('total')} customers checked); "
            f"edit it when GET /api/v1/journeys/{journey.id} shows sync.state 'done'"
        )


def create_journey(session: Session, ctx: EngineContext, tenant_id: int, raw: Any, now: datetime) -> Journey:
    """Create a journey and the pipeline it owns (from a plugin's template when
    ``raw`` names one); ``InvalidInput`` with every problem, ``Conflict`` when
    the name is taken.  The journey starts as a draft."""
    raw = with_template(ctx, raw)
    name = raw.get("name") if isinstance(raw, Mapping) else None
    if not isinstance(name, str) or not name.strip() or len(name) > 100 or "\x00" in name:
        problem = ("name", "give the journey a name of at most 100 characters (or a template)")
        try:  # report every problem at once
            check_journey(session, ctx, tenant_id, raw, pipeline_id=0, current=None)
        except InvalidInput as exc:
            raise InvalidInput([problem, *((e["field"], e["message"]) for e in exc.errors)]) from None
        raise InvalidInput([problem])
    if session.scalar(sa.select(Pipeline.id).where(Pipeline.tenant_id == tenant_id, Pipeline.name == name)):
        raise Conflict(f"a journey or pipeline named {name!r} already exists; choose another name")
    pipeline = Pipeline(tenant_id=tenant_id, name=name, created_at=now)
    session.add(pipeline)
    session.flush()
    # stage conditions name this pipeline; a problem raised here rolls the pipeline back
    checked = check_journey(session, ctx, tenant_id, raw, pipeline_id=pipeline.id, current=None)
    journey = Journey(
        tenant_id=tenant_id,
        pipeline_id=pipeline.id,
        status="draft",
        reminder_channel=checked["reminder_channel"],
        created_at=now,
        updated_at=now,
        **{k: checked[k] for k in SETTINGS},
    )
    session.add(journey)
    session.flush()
    _save_stages(session, journey, checked["stages"], now)
    return journey


def update_journey(
    session: Session, ctx: EngineContext, journey: Journey, raw: Any, now: datetime
) -> Journey:
    """Apply a partial update (settings, name, and the stages when given) after
    checking it all; ``Conflict`` while a sync runs or for a name in use.  The
    hidden reminder SOPs follow the new settings."""
    ensure_unlocked(journey, now)
    checked = check_journey(
        session, ctx, journey.tenant_id, raw, pipeline_id=journey.pipeline_id, current=journey
    )
    pipeline = session.get(Pipeline, journey.pipeline_id)
    assert pipeline is not None
    if checked["name"] and checked["name"] != pipeline.name:
        if session.scalar(
            sa.select(Pipeline.id).where(
                Pipeline.tenant_id == journey.tenant_id, Pipeline.name == checked["name"]
            )
        ):
            raise Conflict(f"a journey or pipeline named {checked['name']!r} already exists")
        pipeline.name = checked["name"]
    for key in SETTINGS:
        setattr(journey, key, checked[key])
    journey.reminder_channel = checked["reminder_channel"]
    journey.updated_at = now
    if "stages" in checked:
        _save_stages(session, journey, checked["stages"], now)
    else:  # switches changed: the hidden SOPs follow
        for js in _journey_stages(session, journey.id):
            sync_reminder_sop(session, journey, session.get(Stage, js.stage_id), js, now)
    session.flush()
    return journey


def _journey_stages(session: Session, journey_id: int) -> list[JourneyStage]:
    return list(session.scalars(sa.select(JourneyStage).where(JourneyStage.journey_id == journey_id)))


def _save_stages(session: Session, journey: Journey, stages: list[dict[str, Any]], now: datetime) -> None:
    """Stages in the given order: existing ones (by id) kept, new ones added,
    missing ones deleted when nobody stands in them and they have no history."""
    existing = {st.id: st for st in stages_of(session, journey.pipeline_id)}
    keep = {st["id"] for st in stages if st["id"] is not None}
    for stage_id, stage in existing.items():
        if stage_id in keep:
            continue
        if session.scalar(
            sa.select(CustomerStage.customer_id).where(CustomerStage.stage_id == stage_id).limit(1)
        ):
            raise Conflict(f"stage {stage.name!r} holds customers; move them before removing the stage")
        if session.scalar(sa.select(StageHistory.id).where(StageHistory.stage_id == stage_id).limit(1)):
            raise Conflict(f"stage {stage.name!r} has history; keep it (rename it) instead of removing it")
        js = session.get(JourneyStage, stage_id)
        if js is not None:
            if js.reminder_sop_id:
                session.get(Sop, js.reminder_sop_id).status = "stopped"  # type: ignore[union-attr]
            session.delete(js)
        session.flush()
        session.delete(stage)
    session.flush()
    # park positions first: the new order may swap names and positions
    for stage in existing.values():
        if stage.id in keep:
            stage.name = f"~parked~{stage.id}~{uuid.uuid4().hex[:8]}"
    session.flush()
    for position, spec in enumerate(stages):
        if spec["id"] is not None:
            stage = existing[spec["id"]]
            stage.name, stage.position = spec["name"], position
        else:
            stage = Stage(
                tenant_id=journey.tenant_id,
                pipeline_id=journey.pipeline_id,
                name=spec["name"],
                position=position,
            )
            session.add(stage)
        session.flush()
        spec["id"] = stage.id
        js = session.get(JourneyStage, stage.id)
        if js is None:
            js = JourneyStage(stage_id=stage.id, journey_id=journey.id, tenant_id=journey.tenant_id)
            session.add(js)
        js.rules = spec["rules"]
        js.entry_sop_id = spec["entry_sop_id"]
        js.reminders = spec["reminders"]
        session.flush()
        sync_reminder_sop(session, journey, stage, js, now)


def start_journey(session: Session, ctx: EngineContext, journey: Journey, now: datetime) -> Journey:
    """Activate a draft or stopped journey: its stage rules place customers and
    its reminder SOPs start.  ``LimitReached`` beyond
    ``SOPFLOW_MAX_ACTIVE_JOURNEYS``; ``Conflict`` when already active or locked by a sync."""
    if journey.status == "active":
        raise Conflict("the journey is already active")
    ensure_unlocked(journey, now)
    limit = ctx.settings.max_active_journeys
    active = session.scalar(
        sa.select(sa.func.count())
        .select_from(Journey)
        .where(Journey.tenant_id == journey.tenant_id, Journey.status == "active")
    )
    if (active or 0) >= limit:
        raise LimitReached(
            f"{active} journeys are active; at most {limit} may be "
            "(SOPFLOW_MAX_ACTIVE_JOURNEYS): stop one first"
        )
    journey.status = "active"
    journey.updated_at = now
    for js in _journey_stages(session, journey.id):
        sync_reminder_sop(session, journey, session.get(Stage, js.stage_id), js, now)
    return journey


def stop_journey(session: Session, journey: Journey, now: datetime) -> Journey:
    """Nobody enters automatically any more; pending stage reminders are cancelled."""
    if journey.status != "active":
        raise Conflict("the journey is not active")
    ensure_unlocked(journey, now)
    journey.status = "stopped"
    journey.updated_at = now
    for js in _journey_stages(session, journey.id):
        sync_reminder_sop(session, journey, session.get(Stage, js.stage_id), js, now)
    return journey


def delete_journey(session: Session, journey: Journey, now: datetime) -> None:
    """Delete a journey that never placed anyone (with its pipeline and stages;
    its hidden reminder SOPs are stopped).  ``Conflict`` when active or when
    customers have stage history in it: stop it instead."""
    ensure_unlocked(journey, now)
    if journey.status == "active":
        raise Conflict("stop the journey before deleting it")
    pid = journey.pipeline_id
    if session.scalar(sa.select(StageHistory.id).where(StageHistory.pipeline_id == pid).limit(1)):
        raise Conflict("the journey has placed customers (stage history); stop it instead of deleting it")
    for js in _journey_stages(session, journey.id):
        if js.reminder_sop_id:
            session.get(Sop, js.reminder_sop_id).status = "stopped"  # type: ignore[union-attr]
        session.delete(js)
    session.execute(sa.delete(JourneySyncTarget).where(JourneySyncTarget.journey_id == journey.id))
    session.flush()
    session.delete(journey)
    session.flush()
    for stage in stages_of(session, pid):
        session.delete(stage)
    session.flush()
    session.delete(session.get(Pipeline, pid))
    session.flush()


def journey_to_dict(session: Session, journey: Journey) -> dict[str, Any]:
    """A journey as the API shows it: settings, sync progress, and its stages
    in order with their rules, entry SOP and reminders."""
    pipeline = session.get(Pipeline, journey.pipeline_id)
    assert pipeline is not None
    settings = {js.stage_id: js for js in _journey_stages(session, journey.id)}
    stages = []
    for stage in stages_of(session, journey.pipeline_id):
        js = settings.get(stage.id)
        stages.append(
            {
                "id": stage.id,
                "name": stage.name,
                "position": stage.position,
                "rules": js.rules if js else [],
                "entry_sop_id": js.entry_sop_id if js else None,
                "reminders": js.reminders if js else [],
                "reminder_sop_id": js.reminder_sop_id if js else None,
            }
        )
    sync = {k: v for k, v in (journey.sync or {}).items() if k not in ("after", "run")}
    return {
        "id": journey.id,
        "name": pipeline.name,
        "pipeline_id": journey.pipeline_id,
        "status": journey.status,
        "reminder_channel": journey.reminder_channel,
        **{k: getattr(journey, k) for k in SETTINGS},
        "stages": stages,
        "sync": sync or {"state": "never"},
        "created_at": journey.created_at.isoformat(),
        "updated_at": journey.updated_at.isoformat(),
    }


def stage_rules(session: Session, journey: Journey) -> list[tuple[Stage, dict[str, Any]]]:
    """(stage, rule tree) for every stage with entry rules, furthest stage first."""
    settings = {js.stage_id: js for js in _journey_stages(session, journey.id)}
    out = []
    for stage in reversed(stages_of(session, journey.pipeline_id)):
        js = settings.get(stage.id)
        rule = as_rule(js.rules) if js else None
        if rule is not None:
            out.append((stage, rule))
    return out


def list_journeys(session: Session, tenant_id: int) -> list[dict[str, Any]]:
    """The tenant's journeys, oldest first, each as ``journey_to_dict`` shows it."""
    rows = session.scalars(sa.select(Journey).where(Journey.tenant_id == tenant_id).order_by(Journey.id))
    return [journey_to_dict(session, j) for j in rows]
