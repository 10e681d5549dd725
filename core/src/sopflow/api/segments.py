"""Saved segments (crowd packs) and rule previews (count + a sample page)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, delete, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from sopflow.api.auth import Auth, needs
from sopflow.api.params import BodyId, Id
from sopflow.api.responses import shape
from sopflow.api.responses.pipelines import PreviewOut, SegmentOut
from sopflow.api.schemas import RequiredName
from sopflow.app import SopflowApp
from sopflow.db import Session
from sopflow.engine.customers.fields import field_definitions
from sopflow.engine.customers.segment_views import delete_segment, list_segments, preview_page
from sopflow.engine.customers.segments import create_segment, get_segment, segment_to_dict

#: The largest preview page (a preview renders each customer in full).
MAX_PREVIEW = 200


class SegmentCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: RequiredName
    rule: dict[str, Any]


class PreviewRequest(msgspec.Struct, forbid_unknown_fields=True):
    rule: dict[str, Any]
    limit: Annotated[int, msgspec.Meta(ge=1, le=MAX_PREVIEW, description=f"1 to {MAX_PREVIEW}")] = 20
    after_id: BodyId | None = None


class SegmentController(Controller):
    path = "/api/v1/segments"
    tags = ["segments"]

    @get("/", sync_to_thread=True, summary="List saved segments", guards=[needs("read")])
    def list_segments(
        self, auth: NamedDependency[Auth], session: NamedDependency[Session]
    ) -> list[SegmentOut]:
        return shape(list[SegmentOut], list_segments(session, auth.tenant_id))

    @post(
        "/",
        sync_to_thread=True,
        summary='Save a rule as a segment (usable as {"segment": id} in rules)',
        guards=[needs("admin")],
    )
    def create(
        self,
        sopflow: NamedDependency[SopflowApp],
        auth: NamedDependency[Auth],
        session: NamedDependency[Session],
        data: JSONBody[SegmentCreate],
    ) -> SegmentOut:
        fields = field_definitions(session, auth.tenant_id, sopflow.plugins)
        segment = create_segment(session, auth.tenant_id, data.name, data.rule, fields, sopflow.now())
        return shape(SegmentOut, segment_to_dict(segment))

    @get("/{segment_id:int}", sync_to_thread=True, summary="One segment", guards=[needs("read")])
    def get_one(
        self, auth: NamedDependency[Auth], session: NamedDependency[Session], segment_id: Id
    ) -> SegmentOut:
        return shape(SegmentOut, segment_to_dict(get_segment(session, auth.tenant_id, segment_id)))

    @delete("/{segment_id:int}", sync_to_thread=True, summary="Delete a segment", guards=[needs("admin")])
    def remove(self, auth: NamedDependency[Auth], session: NamedDependency[Session], segment_id: Id) -> None:
        delete_segment(session, auth.tenant_id, segment_id)

    @post(
        "/preview",
        sync_to_thread=True,
        status_code=200,
        summary="Count a rule's audience and show a sample page",
        guards=[needs("read")],
    )
    def preview_rule(
        self,
        sopflow: NamedDependency[SopflowApp],
        auth: NamedDependency[Auth],
        session: NamedDependency[Session],
        data: JSONBody[PreviewRequest],
    ) -> PreviewOut:
        fields = field_definitions(session, auth.tenant_id, sopflow.plugins)
        page = preview_page(
            session, auth.tenant_id, data.rule, fields, sopflow.now(), data.limit, data.after_id
        )
        return shape(PreviewOut, page)
