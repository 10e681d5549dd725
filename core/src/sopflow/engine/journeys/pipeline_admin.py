"""Pipelines and stages as the API lists and changes them; a journey's own
pipeline is edited through its journey, never here."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sopflow.engine.journeys.manage import journey_of_pipeline
from sopflow.engine.journeys.pipelines import (
    get_pipeline,
    get_stage,
    pipeline_to_dict,
    stage_to_dict,
    stages_of,
)
from sopflow.errors import Conflict, InvalidInput
from sopflow.models import CustomerStage, Pipeline, StageHistory


def not_a_journey(session: Session, pipeline_id: int) -> None:
    """A journey's stages carry rules and reminders: they are edited through the journey."""
    journey = journey_of_pipeline(session, pipeline_id)
    if journey is not None:
        raise Conflict(
            f"this pipeline belongs to journey {journey.id}; "
            f"edit its stages with PATCH /api/v1/journeys/{journey.id}"
        )


def list_pipelines(session: Session, tenant_id: int) -> list[dict[str, Any]]:
    """The tenant's pipelines with their stages, oldest first."""
    rows = session.scalars(sa.select(Pipeline).where(Pipeline.tenant_id == tenant_id).order_by(Pipeline.id))
    return [pipeline_to_dict(session, p) for p in rows]


def delete_pipeline(session: Session, tenant_id: int, pipeline_id: int) -> None:
    """Delete a pipeline no customer was ever placed in (``Conflict`` otherwise)."""
    p = get_pipeline(session, tenant_id, pipeline_id)
    not_a_journey(session, p.id)
    if session.scalar(
        sa.select(CustomerStage.customer_id).where(CustomerStage.pipeline_id == p.id).limit(1)
    ) or session.scalar(sa.select(StageHistory.id).where(StageHistory.pipeline_id == p.id).limit(1)):
        raise Conflict(f"pipeline {p.name!r} has placed customers or history; it cannot be deleted")
    for st in stages_of(session, p.id):
        session.delete(st)
    session.flush()
    session.delete(p)


def update_stage(
    session: Session, tenant_id: int, stage_id: int, name: str | None, position: int | None
) -> dict[str, Any]:
    """Rename a stage (unique in its pipeline) or move it to ``position`` (None: unchanged)."""
    stage = get_stage(session, tenant_id, stage_id)
    not_a_journey(session, stage.pipeline_id)
    siblings = stages_of(session, stage.pipeline_id)
    if name is not None:
        if not name.strip() or len(name) > 100:
            raise InvalidInput([("name", "a non-empty name of at most 100 characters")])
        if any(o.name == name and o.id != stage.id for o in siblings):
            raise InvalidInput([("name", f"stage {name!r} already exists in this pipeline")])
        stage.name = name
    if position is not None:
        order = [o for o in siblings if o.id != stage.id]
        order.insert(max(0, min(position, len(order))), stage)
        for pos, o in enumerate(order):
            o.position = pos
    session.flush()
    return stage_to_dict(stage)
