"""Saved segments (crowd packs) and rule previews (count + a sample page)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
import sqlalchemy as sa
from litestar import Controller, Request, delete, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from sopflow.api.auth import Auth, needs, sopflow_app
from sopflow.api.params import BodyId, Id
from sopflow.api.schemas import RequiredName
from sopflow.engine.customers.fields import field_definitions
from sopflow.engine.customers.records import customer_to_dict
from sopflow.engine.customers.segments import create_segment, get_segment, preview, segment_to_dict
from sopflow.models import Customer, Segment

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
    def list_segments(self, request: Request, auth: NamedDependency[Auth]) -> list[dict[str, Any]]:
        with sopflow_app(request).read() as s:
            return [
                segment_to_dict(x)
                for x in s.scalars(
                    sa.select(Segment).where(Segment.tenant_id == auth.tenant_id).order_by(Segment.id)
                )
            ]

    @post(
        "/",
        sync_to_thread=True,
        summary='Save a rule as a segment (usable as {"segment": id} in rules)',
        guards=[needs("admin")],
    )
    def create(
        self, request: Request, auth: NamedDependency[Auth], data: JSONBody[SegmentCreate]
    ) -> dict[str, Any]:
        app = sopflow_app(request)
        with app.tx() as s:
            fields = field_definitions(s, auth.tenant_id, app.plugins)
            return segment_to_dict(create_segment(s, auth.tenant_id, data.name, data.rule, fields, app.now()))

    @get("/{segment_id:int}", sync_to_thread=True, summary="One segment", guards=[needs("read")])
    def get_one(self, request: Request, auth: NamedDependency[Auth], segment_id: Id) -> dict[str, Any]:
        with sopflow_app(request).read() as s:
            return segment_to_dict(get_segment(s, auth.tenant_id, segment_id))

    @delete("/{segment_id:int}", sync_to_thread=True, summary="Delete a segment", guards=[needs("admin")])
    def remove(self, request: Request, auth: NamedDependency[Auth], segment_id: Id) -> None:
        with sopflow_app(request).tx() as s:
            s.delete(get_segment(s, auth.tenant_id, segment_id))

    @post(
        "/preview",
        sync_to_thread=True,
        status_code=200,
        summary="Count a rule's audience and show a sample page",
        guards=[needs("read")],
    )
    def preview_rule(
        self, request: Request, auth: NamedDependency[Auth], data: JSONBody[PreviewRequest]
    ) -> dict[str, Any]:
        app = sopflow_app(request)
        with app.tx() as s:
            fields = field_definitions(s, auth.tenant_id, app.plugins)
            result = preview(s, auth.tenant_id, data.rule, fields, app.now(), data.limit, data.after_id)
            rows = s.scalars(
                sa.select(Customer).where(Customer.id.in_(result["customer_ids"])).order_by(Customer.id)
            )
            return {
                "count": result["count"],
                "sample": [customer_to_dict(s, c) for c in rows],
                "next_after_id": result["next_after_id"],
            }
