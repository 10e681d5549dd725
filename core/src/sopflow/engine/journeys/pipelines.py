"""Pipelines and stages, and moving a customer between stages.

Every move closes the open history row, opens a new one with its cause, and
appends a ``stage.changed`` event so SOPs and plugins can react.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from sopflow.errors import Conflict, InvalidInput, NotFound
from sopflow.models import CustomerStage, Event, Pipeline, Stage, StageHistory

CAUSES = ("rule", "manual", "sync", "api")
MAX_STAGES = 50


def _check_stage_names(stages: Sequence[Any]) -> list[tuple[str, str]]:
    problems = []
    if not stages:
        problems.append(("stages", "give at least one stage"))
    if len(stages) > MAX_STAGES:
        problems.append(("stages", f"at most {MAX_STAGES} stages"))
    names = []
    for i, st in enumerate(stages):
        name = st.get("name") if isinstance(st, dict) else None
        if not isinstance(name, str) or not name.strip() or len(name) > 100:
            problems.append((f"stages[{i}].name", "a non-empty name of at most 100 characters"))
        elif name in names:
            problems.append((f"stages[{i}].name", f"stage {name!r} appears twice; names are unique"))
        names.append(name)
    return problems


def create_pipeline(
    session: Session, tenant_id: int, name: str, stages: Sequence[dict[str, Any]], now: datetime
) -> Pipeline:
    """Create a pipeline with its stages in order; ``InvalidInput`` for a bad
    name or stage names (empty, duplicated), ``Conflict`` for a name in use."""
    problems = []
    if not isinstance(name, str) or not name.strip() or len(name) > 100:
        problems.append(("name", "a non-empty name of at most 100 characters"))
    problems += _check_stage_names(stages)
    if problems:
        raise InvalidInput(problems)
    if session.scalar(sa.select(Pipeline.id).where(Pipeline.tenant_id == tenant_id, Pipeline.name == name)):
        raise Conflict(f"a pipeline named {name!r} already exists; choose another name")
    pipeline = Pipeline(tenant_id=tenant_id, name=name, created_at=now)
    session.add(pipeline)
    session.flush()
    for pos, st in enumerate(stages):
        session.add(Stage(tenant_id=tenant_id, pipeline_id=pipeline.id, name=st["name"], position=pos))
    session.flush()
    return pipeline


def get_pipeline(session: Session, tenant_id: int, pipeline_id: int) -> Pipeline:
    """The tenant's pipeline ``pipeline_id``, else ``NotFound``."""
    pipeline = session.scalar(
        sa.select(Pipeline).where(Pipeline.id == pipeline_id, Pipeline.tenant_id == tenant_id)
    )
    if pipeline is None:
        raise NotFound("pipeline", pipeline_id)
    return pipeline


def stages_of(session: Session, pipeline_id: int) -> list[Stage]:
    """A pipeline's stages in order."""
    return list(
        session.scalars(sa.select(Stage).where(Stage.pipeline_id == pipeline_id).order_by(Stage.position))
    )


def add_stage(session: Session, pipeline: Pipeline, name: str, position: int | None) -> Stage:
    """Insert a stage at ``position`` (the end when None; the stages after it
    move down one); ``InvalidInput`` for a bad or duplicate name."""
    existing = stages_of(session, pipeline.id)
    problems = _check_stage_names([*({"name": s.name} for s in existing), {"name": name}])
    if problems:
        raise InvalidInput([("name", m) for _, m in problems])
    pos = len(existing) if position is None else max(0, min(position, len(existing)))
    for st in existing:
        if st.position >= pos:
            st.position += 1
    stage = Stage(tenant_id=pipeline.tenant_id, pipeline_id=pipeline.id, name=name, position=pos)
    session.add(stage)
    session.flush()
    return stage


def get_stage(session: Session, tenant_id: int, stage_id: int) -> Stage:
    """The tenant's stage ``stage_id``, else ``NotFound``."""
    stage = session.scalar(sa.select(Stage).where(Stage.id == stage_id, Stage.tenant_id == tenant_id))
    if stage is None:
        raise NotFound("stage", stage_id)
    return stage


def delete_stage(session: Session, stage: Stage) -> None:
    """Delete a stage nobody is in and nobody was ever in; ``Conflict`` naming
    what holds it otherwise."""
    in_use = session.scalar(
        sa.select(sa.func.count()).select_from(CustomerStage).where(CustomerStage.stage_id == stage.id)
    )
    if in_use:
        raise Conflict(f"stage {stage.name!r} holds {in_use} customers; move them first")
    if session.scalar(sa.select(StageHistory.id).where(StageHistory.stage_id == stage.id).limit(1)):
        raise Conflict(f"stage {stage.name!r} has history; rename it instead of deleting")
    session.delete(stage)
    session.flush()


def pipeline_to_dict(session: Session, pipeline: Pipeline) -> dict[str, Any]:
    """A pipeline as the API shows it, with its stages in order."""
    return {
        "id": pipeline.id,
        "name": pipeline.name,
        "created_at": pipeline.created_at.isoformat(),
        "stages": [stage_to_dict(s) for s in stages_of(session, pipeline.id)],
    }


def stage_to_dict(stage: Stage) -> dict[str, Any]:
    """A stage as the API shows it."""
    return {"id": stage.id, "pipeline_id": stage.pipeline_id, "name": stage.name, "position": stage.position}


def move_customer(
    session: Session,
    tenant_id: int,
    customer_id: int,
    stage: Stage,
    cause: str,
    now: datetime,
    *,
    causation_id: int | None = None,
    depth: int = 0,
) -> Event | None:
    """Place a customer in ``stage``.  Returns the ``stage.changed`` event, or
    ``None`` when the customer already stands there (moving is idempotent)."""
    if cause not in CAUSES:
        raise InvalidInput([("cause", f"use one of {', '.join(CAUSES)}")])
    current = session.get(CustomerStage, (customer_id, stage.pipeline_id))
    if current is not None and current.stage_id == stage.id:
        return None
    from_stage = _enter_stage(session, tenant_id, customer_id, stage, cause, now, current)
    event = Event(
        tenant_id=tenant_id,
        customer_id=customer_id,
        type="stage.changed",
        idempotency_key=f"stage:{uuid.uuid4().hex}",
        occurred_at=now,
        received_at=now,
        source="sopflow",
        payload={
            "pipeline_id": stage.pipeline_id,
            "from_stage": from_stage,
            "to_stage": stage.name,
            "stage_id": stage.id,
            "cause": cause,
        },
        causation_id=causation_id,
        depth=depth,
    )
    session.add(event)
    session.flush()
    return event


def _enter_stage(
    session: Session,
    tenant_id: int,
    customer_id: int,
    stage: Stage,
    cause: str,
    now: datetime,
    current: CustomerStage | None,
) -> str | None:
    """Move the customer's place in the pipeline to ``stage`` (``current``: where
    they stand now, if anywhere) and open its history row, closing the one before;
    returns the name of the stage they left."""
    from_stage: str | None = None
    if current is not None:
        from_stage = session.get(Stage, current.stage_id).name  # type: ignore[union-attr]
        session.execute(
            sa.update(StageHistory)
            .where(
                StageHistory.customer_id == customer_id,
                StageHistory.pipeline_id == stage.pipeline_id,
                StageHistory.left_at.is_(None),
            )
            .values(left_at=now)
        )
        current.stage_id = stage.id
        current.entered_at = now
    else:
        session.add(
            CustomerStage(
                customer_id=customer_id,
                pipeline_id=stage.pipeline_id,
                tenant_id=tenant_id,
                stage_id=stage.id,
                entered_at=now,
            )
        )
    session.add(
        StageHistory(
            tenant_id=tenant_id,
            customer_id=customer_id,
            pipeline_id=stage.pipeline_id,
            stage_id=stage.id,
            entered_at=now,
            cause=cause,
        )
    )
    return from_stage


def stage_history(session: Session, tenant_id: int, customer_id: int) -> list[dict[str, Any]]:
    """A customer's stage history across the tenant's pipelines, oldest first."""
    rows = session.scalars(
        sa.select(StageHistory)
        .where(StageHistory.tenant_id == tenant_id, StageHistory.customer_id == customer_id)
        .order_by(StageHistory.entered_at, StageHistory.id)
    )
    return [
        {
            "pipeline_id": r.pipeline_id,
            "stage_id": r.stage_id,
            "entered_at": r.entered_at.isoformat(),
            "left_at": r.left_at.isoformat() if r.left_at else None,
            "cause": r.cause,
        }
        for r in rows
    ]
