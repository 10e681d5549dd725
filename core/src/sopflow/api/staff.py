"""Staff members (the people who add customers and confirm sends)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from litestar import Controller, Request, get, patch, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from sopflow.api.auth import Auth, needs, sopflow_app
from sopflow.api.params import Id
from sopflow.api.schemas import StaffCreate, StaffUpdate
from sopflow.engine.customers.transfers import mark_left
from sopflow.errors import Conflict, InvalidInput, NotFound
from sopflow.models import Staff


def staff_to_dict(m: Staff) -> dict[str, Any]:
    return {
        "id": m.id,
        "external_id": m.external_id,
        "name": m.name,
        "created_at": m.created_at.isoformat(),
        "left_at": m.left_at.isoformat() if m.left_at else None,
    }


class StaffController(Controller):
    path = "/api/v1/staff"
    tags = ["staff"]

    @get("/", sync_to_thread=True, summary="List staff members", guards=[needs("read")])
    def list_staff(self, request: Request, auth: NamedDependency[Auth]) -> list[dict[str, Any]]:
        with sopflow_app(request).read() as s:
            return [
                staff_to_dict(m)
                for m in s.scalars(
                    sa.select(Staff).where(Staff.tenant_id == auth.tenant_id).order_by(Staff.id)
                )
            ]

    @post(
        "/",
        sync_to_thread=True,
        summary="Add a staff member by their channel user id",
        guards=[needs("admin")],
    )
    def create(
        self, request: Request, auth: NamedDependency[Auth], data: JSONBody[StaffCreate]
    ) -> dict[str, Any]:
        if not data.external_id.strip() or len(data.external_id) > 128:
            raise InvalidInput([("external_id", "the staff member's channel user id, 1–128 characters")])
        app = sopflow_app(request)
        with app.tx() as s:
            if s.scalar(
                sa.select(Staff.id).where(
                    Staff.tenant_id == auth.tenant_id, Staff.external_id == data.external_id
                )
            ):
                raise Conflict(f"staff member {data.external_id!r} already exists")
            m = Staff(
                tenant_id=auth.tenant_id,
                external_id=data.external_id,
                name=data.name or data.external_id[:100],  # an id may be longer than a name
                created_at=app.now(),
            )
            s.add(m)
            s.flush()
            return staff_to_dict(m)

    @get("/{staff_id:int}", sync_to_thread=True, summary="One staff member", guards=[needs("read")])
    def get_one(self, request: Request, auth: NamedDependency[Auth], staff_id: Id) -> dict[str, Any]:
        with sopflow_app(request).read() as s:
            return staff_to_dict(self._get(s, auth, staff_id))

    @patch(
        "/{staff_id:int}",
        sync_to_thread=True,
        summary="Rename a staff member, or mark them as left (their customers' touches are held)",
        guards=[needs("admin")],
    )
    def update(
        self, request: Request, auth: NamedDependency[Auth], staff_id: Id, data: JSONBody[StaffUpdate]
    ) -> dict[str, Any]:
        app = sopflow_app(request)
        with app.tx() as s:
            m = self._get(s, auth, staff_id)
            if data.name is not None:
                m.name = data.name
            if data.left is not None:
                mark_left(s, m, data.left, app.now())
            return staff_to_dict(m)

    @staticmethod
    def _get(s: Any, auth: NamedDependency[Auth], staff_id: Id) -> Staff:
        m = s.scalar(sa.select(Staff).where(Staff.id == staff_id, Staff.tenant_id == auth.tenant_id))
        if m is None:
            raise NotFound("staff member", staff_id)
        return m
