"""SOPs, their enrolments and touches."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
import sqlalchemy as sa
from litestar import Controller, Request, get, patch, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, Parameter

from sopflow.api.auth import Auth, needs, sopflow_app
from sopflow.api.params import Id, Limit, OptionalCursor, OptionalId, OptionalInstant
from sopflow.api.schemas import RequiredName
from sopflow.app import SopflowApp
from sopflow.conditions.storage import parse_instant
from sopflow.engine.customers.fields import field_definitions
from sopflow.engine.delivery.dispatch import dispatch_due
from sopflow.engine.sops.definition import HIDDEN_KIND
from sopflow.engine.sops.listing import enrollment_page, enrollment_to_dict, touch_to_dict
from sopflow.engine.sops.manage import (
    create_sop,
    current_definition,
    end_manually,
    get_sop,
    sop_to_dict,
    start_sop,
    stop_sop,
    update_sop,
)
from sopflow.engine.sops.stats import sop_comparison, sop_stats
from sopflow.errors import Conflict, InvalidInput
from sopflow.models import Sop, SopVersion, Touch
from sopflow.models.touch_status import TouchStatus
from sopflow.pagination import page

#: The conversion window of a comparison, in days (default: the first SOP's goal window).
WindowDays = Annotated[
    int | None,
    Parameter(ge=1, le=365, description="count conversions within this many days of enrolling (1 to 365)"),
]


class SopCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: RequiredName
    definition: dict[str, Any]


class SopUpdate(msgspec.Struct, forbid_unknown_fields=True):
    name: RequiredName | None = None
    definition: dict[str, Any] | None = None


class EndEnrollment(msgspec.Struct, forbid_unknown_fields=True):
    tags_add: list[str] = msgspec.field(default_factory=list)
    flow_to: int | None = None


def user_sop(session: Any, sop: Sop) -> Sop:
    """A journey's reminder SOP is edited through its journey, not here."""
    if sop.kind == HIDDEN_KIND:
        journey = (current_definition(session, sop).get("journey") or {}).get("journey_id")
        raise Conflict(f"this SOP sends a journey's stage reminders; edit PATCH /api/v1/journeys/{journey}")
    return sop


def start_audience(app: SopflowApp, tenant_id: int, sop_id: Id) -> None:
    """Compute a nurture SOP's audience in the background (inline without a broker)."""
    # an optimisation when it goes to a worker: the scheduler advances every pending audience anyway
    app.enqueue_after_commit("audience", tenant_id, sop_id)


class SopController(Controller):
    path = "/api/v1/sops"
    tags = ["sops"]

    @get("/", sync_to_thread=True, summary="List SOPs", guards=[needs("read")])
    def list_sops(self, request: Request, auth: NamedDependency[Auth]) -> list[dict[str, Any]]:
        with sopflow_app(request).read() as s:
            return [
                sop_to_dict(s, x)
                for x in s.scalars(sa.select(Sop).where(Sop.tenant_id == auth.tenant_id).order_by(Sop.id))
            ]

    @post("/", sync_to_thread=True, summary="Create an SOP (as a draft)", guards=[needs("admin")])
    def create(
        self, request: Request, auth: NamedDependency[Auth], data: JSONBody[SopCreate]
    ) -> dict[str, Any]:
        app = sopflow_app(request)
        with app.tx() as s:
            return sop_to_dict(s, create_sop(s, app, auth.tenant_id, data.name, data.definition, app.now()))

    @get(
        "/{sop_id:int}",
        sync_to_thread=True,
        summary="One SOP with its current definition",
        guards=[needs("read")],
    )
    def get_one(self, request: Request, auth: NamedDependency[Auth], sop_id: Id) -> dict[str, Any]:
        with sopflow_app(request).read() as s:
            return sop_to_dict(s, get_sop(s, auth.tenant_id, sop_id))

    @patch(
        "/{sop_id:int}",
        sync_to_thread=True,
        summary="Edit; a started SOP gets a new version, running enrolments keep theirs",
        guards=[needs("admin")],
    )
    def update(
        self, request: Request, auth: NamedDependency[Auth], sop_id: Id, data: JSONBody[SopUpdate]
    ) -> dict[str, Any]:
        app = sopflow_app(request)
        with app.tx() as s:
            sop = user_sop(s, get_sop(s, auth.tenant_id, sop_id, lock=True))
            return sop_to_dict(s, update_sop(s, app, sop, data.name, data.definition, app.now()))

    @get(
        "/{sop_id:int}/versions",
        sync_to_thread=True,
        summary="Every version of the SOP",
        guards=[needs("read")],
    )
    def versions(self, request: Request, auth: NamedDependency[Auth], sop_id: Id) -> list[dict[str, Any]]:
        with sopflow_app(request).read() as s:
            get_sop(s, auth.tenant_id, sop_id)
            rows = s.scalars(
                sa.select(SopVersion).where(SopVersion.sop_id == sop_id).order_by(SopVersion.version)
            )
            return [
                {
                    "version": v.version,
                    "id": v.id,
                    "definition": v.definition,
                    "created_at": v.created_at.isoformat(),
                }
                for v in rows
            ]

    @post(
        "/{sop_id:int}/start",
        sync_to_thread=True,
        status_code=200,
        summary="Start; a nurture SOP's audience is enrolled in the background",
        guards=[needs("admin")],
    )
    def start(self, request: Request, auth: NamedDependency[Auth], sop_id: Id) -> dict[str, Any]:
        app = sopflow_app(request)
        with app.tx() as s:
            sop = start_sop(s, user_sop(s, get_sop(s, auth.tenant_id, sop_id, lock=True)), app.now())
            kind = sop.kind
        if kind == "nurture":
            start_audience(app, auth.tenant_id, sop_id)
        with app.tx() as s:
            return sop_to_dict(s, get_sop(s, auth.tenant_id, sop_id))

    @post(
        "/{sop_id:int}/stop",
        sync_to_thread=True,
        status_code=200,
        summary="Stop; pending touches are cancelled and recorded",
        guards=[needs("admin")],
    )
    def stop(self, request: Request, auth: NamedDependency[Auth], sop_id: Id) -> dict[str, Any]:
        app = sopflow_app(request)
        with app.tx() as s:
            sop = user_sop(s, get_sop(s, auth.tenant_id, sop_id, lock=True))
            ended = stop_sop(s, sop, app.now(), field_definitions(s, auth.tenant_id, app.plugins))
            return {**sop_to_dict(s, sop), "enrollments_stopped": ended}

    @get(
        "/{sop_id:int}/stats",
        sync_to_thread=True,
        summary="Totals per SOP and per step",
        guards=[needs("read")],
    )
    def stats(self, request: Request, auth: NamedDependency[Auth], sop_id: Id) -> dict[str, Any]:
        with sopflow_app(request).read() as s:
            return sop_stats(s, get_sop(s, auth.tenant_id, sop_id))

    @get(
        "/{sop_id:int}/compare",
        sync_to_thread=True,
        summary="Compare this SOP with another (say one per staff group): rates, 95% intervals, z-test",
        guards=[needs("read")],
    )
    def compare(
        self,
        request: Request,
        auth: NamedDependency[Auth],
        sop_id: Id,
        other: Id,
        days: WindowDays = None,
    ) -> dict[str, Any]:
        if other == sop_id:
            raise InvalidInput([("other", "give another SOP's id to compare with")])
        with sopflow_app(request).tx() as s:
            sops = [get_sop(s, auth.tenant_id, sop_id), get_sop(s, auth.tenant_id, other)]
            return sop_comparison(s, sops, days)

    @get(
        "/{sop_id:int}/enrollments",
        sync_to_thread=True,
        summary="Enrolled customers, status and next touch",
        guards=[needs("read")],
    )
    def enrollments(
        self,
        request: Request,
        auth: NamedDependency[Auth],
        sop_id: Id,
        cursor: OptionalCursor = None,
        limit: Limit = 100,
        status: str | None = None,
    ) -> dict[str, Any]:
        with sopflow_app(request).read() as s:
            return enrollment_page(s, auth.tenant_id, sop_id, cursor, limit, status)


class EnrollmentController(Controller):
    path = "/api/v1/enrollments"
    tags = ["sops"]

    @post(
        "/{enrollment_id:int}/end",
        sync_to_thread=True,
        status_code=200,
        summary="End one customer's enrolment by hand, with tags and a flow target",
        guards=[needs("admin")],
    )
    def end(
        self, request: Request, auth: NamedDependency[Auth], enrollment_id: Id, data: JSONBody[EndEnrollment]
    ) -> dict[str, Any]:
        app = sopflow_app(request)
        with app.tx() as s:
            fields = field_definitions(s, auth.tenant_id, app.plugins)
            e = end_manually(
                s, auth.tenant_id, enrollment_id, app.now(), fields, data.tags_add, data.flow_to, app
            )
            return enrollment_to_dict(e)


class TouchController(Controller):
    path = "/api/v1/touches"
    tags = ["sops"]

    @get(
        "/",
        sync_to_thread=True,
        summary="Touches, filtered by status, customer, SOP and due window",
        guards=[needs("read")],
    )
    def list_touches(
        self,
        request: Request,
        auth: NamedDependency[Auth],
        cursor: OptionalCursor = None,
        limit: Limit = 100,
        status: TouchStatus | None = None,
        customer_id: OptionalId = None,
        sop_id: OptionalId = None,
        due_after: OptionalInstant = None,
        due_before: OptionalInstant = None,
    ) -> dict[str, Any]:
        query = sa.select(Touch).where(Touch.tenant_id == auth.tenant_id)
        for value, column in (
            (status, Touch.status),
            (customer_id, Touch.customer_id),
            (sop_id, Touch.sop_id),
        ):
            if value is not None:
                query = query.where(column == value)
        for name, value, op in (("due_after", due_after, "ge"), ("due_before", due_before, "lt")):
            if value is not None:
                try:
                    when = parse_instant(value)
                except ValueError as exc:
                    raise InvalidInput([(name, str(exc))]) from None
                query = query.where(Touch.due_at >= when if op == "ge" else Touch.due_at < when)
        with sopflow_app(request).read() as s:
            rows, next_cursor = page(s, query, Touch.id, cursor, limit)
            return {"items": [touch_to_dict(t) for t in rows], "next_cursor": next_cursor}

    @post(
        "/dispatch",
        sync_to_thread=True,
        status_code=200,
        summary="Dispatch due touches now (manual clock only: tests, demos, previews)",
        guards=[needs("admin")],
    )
    def dispatch(self, request: Request, auth: NamedDependency[Auth]) -> dict[str, Any]:
        app = sopflow_app(request)
        if not app.clock.manual:
            from sopflow.errors import Conflict

            raise Conflict(
                "dispatch runs on its own under the system clock; this is for SOPFLOW_CLOCK=manual"
            )
        return {"dispatched": dispatch_due(app)}
