"""Pipelines and their ordered stages."""

from __future__ import annotations

from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from sopflow.api.auth import Auth, needs
from sopflow.api.params import Id
from sopflow.api.responses import shape
from sopflow.api.responses.pipelines import PipelineOut, StageOut
from sopflow.api.schemas import PipelineCreate, StageCreate, StageUpdate
from sopflow.app import SopflowApp
from sopflow.db import Session
from sopflow.engine.journeys.pipeline_admin import (
    delete_pipeline,
    list_pipelines,
    not_a_journey,
    update_stage,
)
from sopflow.engine.journeys.pipelines import (
    add_stage,
    create_pipeline,
    delete_stage,
    get_pipeline,
    get_stage,
    pipeline_to_dict,
    stage_to_dict,
)
from sopflow.errors import InvalidInput


def _named_stages(app: SopflowApp, data: PipelineCreate) -> tuple[str, list[dict[str, str]]]:
    """The pipeline's name and stages: as given, else from the plugin's template (register_pipelines)."""
    name, stages = data.name, [{"name": st.name} for st in data.stages]
    if data.template is not None:
        reg = app.plugins.registry.get("register_pipelines", data.template)
        if reg is None:
            known = sorted(r.spec.key for r in app.plugins.registry.all("register_pipelines"))
            raise InvalidInput([("template", f"no pipeline template {data.template!r}; installed: {known}")])
        name = name or reg.spec.name or reg.spec.key
        stages = stages or [{"name": st.name} for st in reg.spec.stages]
    if not name:
        raise InvalidInput([("name", "give the pipeline a name (or a template)")])
    return name, stages


class PipelineController(Controller):
    path = "/api/v1/pipelines"
    tags = ["pipelines"]

    @get("/", sync_to_thread=True, summary="List pipelines with their stages", guards=[needs("read")])
    def list_pipelines(
        self, auth: NamedDependency[Auth], session: NamedDependency[Session]
    ) -> list[PipelineOut]:
        return shape(list[PipelineOut], list_pipelines(session, auth.tenant_id))

    @post("/", sync_to_thread=True, summary="Create a pipeline with ordered stages", guards=[needs("admin")])
    def create(
        self,
        sopflow: NamedDependency[SopflowApp],
        auth: NamedDependency[Auth],
        session: NamedDependency[Session],
        data: JSONBody[PipelineCreate],
    ) -> PipelineOut:
        name, stages = _named_stages(sopflow, data)
        p = create_pipeline(session, auth.tenant_id, name, stages, sopflow.now())
        return shape(PipelineOut, pipeline_to_dict(session, p))

    @get("/{pipeline_id:int}", sync_to_thread=True, summary="One pipeline", guards=[needs("read")])
    def get_one(
        self, auth: NamedDependency[Auth], session: NamedDependency[Session], pipeline_id: Id
    ) -> PipelineOut:
        return shape(
            PipelineOut, pipeline_to_dict(session, get_pipeline(session, auth.tenant_id, pipeline_id))
        )

    @delete(
        "/{pipeline_id:int}",
        sync_to_thread=True,
        summary="Delete an unused pipeline",
        guards=[needs("admin")],
    )
    def remove(self, auth: NamedDependency[Auth], session: NamedDependency[Session], pipeline_id: Id) -> None:
        delete_pipeline(session, auth.tenant_id, pipeline_id)

    @post("/{pipeline_id:int}/stages", sync_to_thread=True, summary="Add a stage", guards=[needs("admin")])
    def create_stage(
        self,
        auth: NamedDependency[Auth],
        session: NamedDependency[Session],
        pipeline_id: Id,
        data: StageCreate,
    ) -> StageOut:
        not_a_journey(session, pipeline_id)
        pipeline = get_pipeline(session, auth.tenant_id, pipeline_id)
        return shape(StageOut, stage_to_dict(add_stage(session, pipeline, data.name, data.position)))


class StageController(Controller):
    path = "/api/v1/stages"
    tags = ["pipelines"]

    @patch(
        "/{stage_id:int}", sync_to_thread=True, summary="Rename or reorder a stage", guards=[needs("admin")]
    )
    def update(
        self,
        auth: NamedDependency[Auth],
        session: NamedDependency[Session],
        stage_id: Id,
        data: JSONBody[StageUpdate],
    ) -> StageOut:
        return shape(StageOut, update_stage(session, auth.tenant_id, stage_id, data.name, data.position))

    @delete("/{stage_id:int}", sync_to_thread=True, summary="Delete an empty stage", guards=[needs("admin")])
    def remove(self, auth: NamedDependency[Auth], session: NamedDependency[Session], stage_id: Id) -> None:
        stage = get_stage(session, auth.tenant_id, stage_id)
        not_a_journey(session, stage.pipeline_id)
        delete_stage(session, stage)
