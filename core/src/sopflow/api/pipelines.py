"""Pipelines and their ordered stages."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from litestar import Controller, Request, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from sopflow.api.auth import Auth, needs, sopflow_app
from sopflow.api.params import Id
from sopflow.api.schemas import PipelineCreate, StageCreate, StageUpdate
from sopflow.engine.journeys.manage import journey_of_pipeline
from sopflow.engine.journeys.pipelines import (
    add_stage,
    create_pipeline,
    delete_stage,
    get_pipeline,
    get_stage,
    pipeline_to_dict,
    stage_to_dict,
    stages_of,
)
from sopflow.errors import Conflict, InvalidInput
from sopflow.models import CustomerStage, Pipeline, Stage, StageHistory


def not_a_journey(session: Any, pipeline_id: Id) -> None:
    """A journey's stages carry rules and reminders: they are edited through the journey."""
    journey = journey_of_pipeline(session, pipeline_id)
    if journey is not None:
        raise Conflict(
            f"this pipeline belongs to journey {journey.id}; "
            f"edit its stages with PATCH /api/v1/journeys/{journey.id}"
        )


class PipelineController(Controller):
    path = "/api/v1/pipelines"
    tags = ["pipelines"]

    @get("/", sync_to_thread=True, summary="List pipelines with their stages", guards=[needs("read")])
    def list_pipelines(self, request: Request, auth: NamedDependency[Auth]) -> list[dict[str, Any]]:
        with sopflow_app(request).read() as s:
            rows = s.scalars(
                sa.select(Pipeline).where(Pipeline.tenant_id == auth.tenant_id).order_by(Pipeline.id)
            )
            return [pipeline_to_dict(s, p) for p in rows]

    @post("/", sync_to_thread=True, summary="Create a pipeline with ordered stages", guards=[needs("admin")])
    def create(
        self, request: Request, auth: NamedDependency[Auth], data: JSONBody[PipelineCreate]
    ) -> dict[str, Any]:
        app = sopflow_app(request)
        name, stages = data.name, [{"name": st.name} for st in data.stages]
        if data.template is not None:  # a plugin's pipeline template (register_pipelines)
            reg = app.plugins.registry.get("register_pipelines", data.template)
            if reg is None:
                known = sorted(r.spec.key for r in app.plugins.registry.all("register_pipelines"))
                raise InvalidInput(
                    [("template", f"no pipeline template {data.template!r}; installed: {known}")]
                )
            name = name or reg.spec.name or reg.spec.key
            stages = stages or [{"name": st.name} for st in reg.spec.stages]
        if not name:
            raise InvalidInput([("name", "give the pipeline a name (or a template)")])
        with app.tx() as s:
            p = create_pipeline(s, auth.tenant_id, name, stages, app.now())
            return pipeline_to_dict(s, p)

    @get("/{pipeline_id:int}", sync_to_thread=True, summary="One pipeline", guards=[needs("read")])
    def get_one(self, request: Request, auth: NamedDependency[Auth], pipeline_id: Id) -> dict[str, Any]:
        with sopflow_app(request).read() as s:
            return pipeline_to_dict(s, get_pipeline(s, auth.tenant_id, pipeline_id))

    @delete(
        "/{pipeline_id:int}",
        sync_to_thread=True,
        summary="Delete an unused pipeline",
        guards=[needs("admin")],
    )
    def remove(self, request: Request, auth: NamedDependency[Auth], pipeline_id: Id) -> None:
        with sopflow_app(request).tx() as s:
            p = get_pipeline(s, auth.tenant_id, pipeline_id)
            not_a_journey(s, p.id)
            if s.scalar(
                sa.select(CustomerStage.customer_id).where(CustomerStage.pipeline_id == p.id).limit(1)
            ) or s.scalar(sa.select(StageHistory.id).where(StageHistory.pipeline_id == p.id).limit(1)):
                raise Conflict(f"pipeline {p.name!r} has placed customers or history; it cannot be deleted")
            for st in stages_of(s, p.id):
                s.delete(st)
            s.flush()
            s.delete(p)

    @post("/{pipeline_id:int}/stages", sync_to_thread=True, summary="Add a stage", guards=[needs("admin")])
    def create_stage(
        self, request: Request, auth: NamedDependency[Auth], pipeline_id: Id, data: StageCreate
    ) -> dict[str, Any]:
        with sopflow_app(request).tx() as s:
            not_a_journey(s, pipeline_id)
            return stage_to_dict(
                add_stage(s, get_pipeline(s, auth.tenant_id, pipeline_id), data.name, data.position)
            )


class StageController(Controller):
    path = "/api/v1/stages"
    tags = ["pipelines"]

    @patch(
        "/{stage_id:int}", sync_to_thread=True, summary="Rename or reorder a stage", guards=[needs("admin")]
    )
    def update(
        self, request: Request, auth: NamedDependency[Auth], stage_id: Id, data: JSONBody[StageUpdate]
    ) -> dict[str, Any]:
        with sopflow_app(request).tx() as s:
            stage = get_stage(s, auth.tenant_id, stage_id)
            not_a_journey(s, stage.pipeline_id)
            siblings = stages_of(s, stage.pipeline_id)
            if data.name is not None:
                if not data.name.strip() or len(data.name) > 100:
                    raise InvalidInput([("name", "a non-empty name of at most 100 characters")])
                if any(o.name == data.name and o.id != stage.id for o in siblings):
                    raise InvalidInput([("name", f"stage {data.name!r} already exists in this pipeline")])
                stage.name = data.name
            if data.position is not None:
                order = [o for o in siblings if o.id != stage.id]
                order.insert(max(0, min(data.position, len(order))), stage)
                for pos, o in enumerate(order):
                    o.position = pos
            s.flush()
            return stage_to_dict(stage)

    @delete("/{stage_id:int}", sync_to_thread=True, summary="Delete an empty stage", guards=[needs("admin")])
    def remove(self, request: Request, auth: NamedDependency[Auth], stage_id: Id) -> None:
        with sopflow_app(request).tx() as s:
            stage: Stage = get_stage(s, auth.tenant_id, stage_id)
            not_a_journey(s, stage.pipeline_id)
            delete_stage(s, stage)
