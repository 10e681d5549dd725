"""Staff members (the people who add customers and confirm sends)."""

from __future__ import annotations

from litestar import Controller, get, patch, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from sopflow.api.auth import Auth, needs
from sopflow.api.params import Id
from sopflow.api.responses import shape
from sopflow.api.responses.tenants import StaffOut
from sopflow.api.schemas import StaffCreate, StaffUpdate
from sopflow.app import SopflowApp
from sopflow.db import Session
from sopflow.engine.customers.staff import add_staff, get_staff, list_staff, staff_to_dict, update_staff


class StaffController(Controller):
    path = "/api/v1/staff"
    tags = ["staff"]

    @get("/", sync_to_thread=True, summary="List staff members", guards=[needs("read")])
    def list_staff(self, auth: NamedDependency[Auth], session: NamedDependency[Session]) -> list[StaffOut]:
        return shape(list[StaffOut], list_staff(session, auth.tenant_id))

    @post(
        "/",
        sync_to_thread=True,
        summary="Add a staff member by their channel user id",
        guards=[needs("admin")],
    )
    def create(
        self,
        sopflow: NamedDependency[SopflowApp],
        auth: NamedDependency[Auth],
        session: NamedDependency[Session],
        data: JSONBody[StaffCreate],
    ) -> StaffOut:
        return shape(StaffOut, add_staff(session, auth.tenant_id, data.external_id, data.name, sopflow.now()))

    @get("/{staff_id:int}", sync_to_thread=True, summary="One staff member", guards=[needs("read")])
    def get_one(
        self, auth: NamedDependency[Auth], session: NamedDependency[Session], staff_id: Id
    ) -> StaffOut:
        return shape(StaffOut, staff_to_dict(get_staff(session, auth.tenant_id, staff_id)))

    @patch(
        "/{staff_id:int}",
        sync_to_thread=True,
        summary="Rename a staff member, or mark them as left (their customers' touches are held)",
        guards=[needs("admin")],
    )
    def update(
        self,
        sopflow: NamedDependency[SopflowApp],
        auth: NamedDependency[Auth],
        session: NamedDependency[Session],
        staff_id: Id,
        data: JSONBody[StaffUpdate],
    ) -> StaffOut:
        return shape(
            StaffOut, update_staff(session, auth.tenant_id, staff_id, data.name, data.left, sopflow.now())
        )
