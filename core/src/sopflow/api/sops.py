"""SOPs, their enrolments and touches."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, get, patch, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, Parameter

from sopflow.api.auth import Auth, needs
from sopflow.api.params import Id, Limit, OptionalCursor, OptionalId, OptionalInstant
from sopflow.api.responses import shape
from sopflow.api.responses.sops import (
    ComparisonOut,
    DispatchOut,
    EnrollmentOut,
    EnrollmentPage,
    SopOut,
    SopStatsOut,
    SopVersionOut,
    StoppedSopOut,
    TouchPage,
)
from sopflow.api.schemas import RequiredName
from sopflow.app import SopflowApp
from sopflow.db import Session
from sopflow.engine.customers.fields import field_definitions
from sopflow.engine.delivery.dispatch import dispatch_due
from sopflow.engine.sops.listing import enrollment_page, enrollment_to_dict
from sopflow.engine.sops.manage import (
    create_sop,
    end_manually,
    get_sop,
    sop_to_dict,
    stop_sop,
    update_sop,
)
from sopflow.engine.sops.stats import sop_comparison, sop_stats
from sopflow.engine.sops.views import list_sops, list_touches, sop_versions, start_and_show, user_sop
from sopflow.errors import Conflict, InvalidInput
from sopflow.models.touch_status import TouchStatus

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


A = NamedDependency[Auth]
S = NamedDependency[Session]
App = NamedDependency[SopflowApp]


class SopController(Controller):
    path = "/api/v1/sops"
    tags = ["sops"]

    @get("/", sync_to_thread=True, summary="List SOPs", guards=[needs("read")])
    def list_sops(self, auth: A, session: S) -> list[SopOut]:
        return shape(list[SopOut], list_sops(session, auth.tenant_id))

    @post("/", sync_to_thread=True, summary="Create an SOP (as a draft)", guards=[needs("admin")])
    def create(self, sopflow: App, auth: A, session: S, data: JSONBody[SopCreate]) -> SopOut:
        sop = create_sop(session, sopflow, auth.tenant_id, data.name, data.definition, sopflow.now())
        return shape(SopOut, sop_to_dict(session, sop))

    @get(
        "/{sop_id:int}",
        sync_to_thread=True,
        summary="One SOP with its current definition",
        guards=[needs("read")],
    )
    def get_one(self, auth: A, session: S, sop_id: Id) -> SopOut:
        return shape(SopOut, sop_to_dict(session, get_sop(session, auth.tenant_id, sop_id)))

    @patch(
        "/{sop_id:int}",
        sync_to_thread=True,
        summary="Edit; a started SOP gets a new version, running enrolments keep theirs",
        guards=[needs("admin")],
    )
    def update(self, sopflow: App, auth: A, session: S, sop_id: Id, data: JSONBody[SopUpdate]) -> SopOut:
        sop = user_sop(session, get_sop(session, auth.tenant_id, sop_id, lock=True))
        changed = update_sop(session, sopflow, sop, data.name, data.definition, sopflow.now())
        return shape(SopOut, sop_to_dict(session, changed))

    @get(
        "/{sop_id:int}/versions",
        sync_to_thread=True,
        summary="Every version of the SOP",
        guards=[needs("read")],
    )
    def versions(self, auth: A, session: S, sop_id: Id) -> list[SopVersionOut]:
        return shape(list[SopVersionOut], sop_versions(session, auth.tenant_id, sop_id))

    # no request session: the start commits before the audience is handed on (engine.sops.views)
    @post(
        "/{sop_id:int}/start",
        sync_to_thread=True,
        status_code=200,
        summary="Start; a nurture SOP's audience is enrolled in the background",
        guards=[needs("admin")],
    )
    def start(self, sopflow: App, auth: A, sop_id: Id) -> SopOut:
        return shape(SopOut, start_and_show(sopflow, auth.tenant_id, sop_id))

    @post(
        "/{sop_id:int}/stop",
        sync_to_thread=True,
        status_code=200,
        summary="Stop; pending touches are cancelled and recorded",
        guards=[needs("admin")],
    )
    def stop(self, sopflow: App, auth: A, session: S, sop_id: Id) -> StoppedSopOut:
        sop = user_sop(session, get_sop(session, auth.tenant_id, sop_id, lock=True))
        ended = stop_sop(
            session, sop, sopflow.now(), field_definitions(session, auth.tenant_id, sopflow.plugins)
        )
        return shape(StoppedSopOut, {**sop_to_dict(session, sop), "enrollments_stopped": ended})

    @get(
        "/{sop_id:int}/stats",
        sync_to_thread=True,
        summary="Totals per SOP and per step",
        guards=[needs("read")],
    )
    def stats(self, auth: A, session: S, sop_id: Id) -> SopStatsOut:
        return shape(SopStatsOut, sop_stats(session, get_sop(session, auth.tenant_id, sop_id)))

    @get(
        "/{sop_id:int}/compare",
        sync_to_thread=True,
        summary="Compare this SOP with another (say one per staff group): rates, 95% intervals, z-test",
        guards=[needs("read")],
    )
    def compare(self, auth: A, session: S, sop_id: Id, other: Id, days: WindowDays = None) -> ComparisonOut:
        if other == sop_id:
            raise InvalidInput([("other", "give another SOP's id to compare with")])
        sops = [get_sop(session, auth.tenant_id, sop_id), get_sop(session, auth.tenant_id, other)]
        return shape(ComparisonOut, sop_comparison(session, sops, days))

    @get(
        "/{sop_id:int}/enrollments",
        sync_to_thread=True,
        summary="Enrolled customers, status and next touch",
        guards=[needs("read")],
    )
    def enrollments(
        self,
        auth: A,
        session: S,
        sop_id: Id,
        cursor: OptionalCursor = None,
        limit: Limit = 100,
        status: str | None = None,
    ) -> EnrollmentPage:
        return shape(EnrollmentPage, enrollment_page(session, auth.tenant_id, sop_id, cursor, limit, status))


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
        self, sopflow: App, auth: A, session: S, enrollment_id: Id, data: JSONBody[EndEnrollment]
    ) -> EnrollmentOut:
        fields = field_definitions(session, auth.tenant_id, sopflow.plugins)
        e = end_manually(
            session,
            auth.tenant_id,
            enrollment_id,
            sopflow.now(),
            fields,
            data.tags_add,
            data.flow_to,
            sopflow,
        )
        return shape(EnrollmentOut, enrollment_to_dict(e))


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
        auth: A,
        session: S,
        cursor: OptionalCursor = None,
        limit: Limit = 100,
        status: TouchStatus | None = None,
        customer_id: OptionalId = None,
        sop_id: OptionalId = None,
        due_after: OptionalInstant = None,
        due_before: OptionalInstant = None,
    ) -> TouchPage:
        equal = {"status": status, "customer_id": customer_id, "sop_id": sop_id}
        found = list_touches(session, auth.tenant_id, equal, due_after, due_before, cursor, limit)
        return shape(TouchPage, found)

    # no request session: dispatching claims and hands on in transactions of its own
    @post(
        "/dispatch",
        sync_to_thread=True,
        status_code=200,
        summary="Dispatch due touches now (manual clock only: tests, demos, previews)",
        guards=[needs("admin")],
    )
    def dispatch(self, sopflow: App, auth: A) -> DispatchOut:
        if not sopflow.clock.manual:
            raise Conflict(
                "dispatch runs on its own under the system clock; this is for SOPFLOW_CLOCK=manual"
            )
        return DispatchOut(dispatched=dispatch_due(sopflow))
