"""The send calendar forecast: the tenant's, and one SOP's (docs/forecast.md)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, Parameter

from sopflow.api.auth import Auth, needs, sopflow_app
from sopflow.api.params import Id
from sopflow.engine.forecast.calendar import MAX_DAYS, sop_forecast, tenant_forecast
from sopflow.engine.sops.manage import checked_definition, get_sop

_HORIZON = f"the horizon in days, 1 to {MAX_DAYS}"
Days = Annotated[int, Parameter(ge=1, le=MAX_DAYS, description=_HORIZON)]
BodyDays = Annotated[int, msgspec.Meta(ge=1, le=MAX_DAYS, description=_HORIZON)]


class SopForecastRequest(msgspec.Struct, forbid_unknown_fields=True):
    days: BodyDays = 40
    #: an edit to compare before saving it: the SOP as if started now with this definition
    definition: dict[str, Any] | None = None
    #: list each touch that goes out (up to 10,000) besides the counts
    touches: bool = False


class ForecastController(Controller):
    path = "/api/v1"
    tags = ["forecast"]

    @get(
        "/forecast",
        sync_to_thread=True,
        summary="The send calendar: every started SOP and journey reminder over the next days",
        guards=[needs("read")],
    )
    def tenant(
        self, request: Request, auth: NamedDependency[Auth], days: Days = 40, touches: bool = False
    ) -> dict[str, Any]:
        app = sopflow_app(request)
        with app.read() as s:
            prepared = tenant_forecast(s, app, auth.tenant_id, days, touches=touches)
        return prepared.run()  # outside the transaction: the replay holds no lock

    @post(
        "/sops/{sop_id:int}/forecast",
        sync_to_thread=True,
        status_code=200,
        summary="What this SOP (or an edit of it, not saved) will send per day, against today's data",
        guards=[needs("read")],
    )
    def sop(
        self,
        request: Request,
        auth: NamedDependency[Auth],
        sop_id: Id,
        data: JSONBody[SopForecastRequest],
    ) -> dict[str, Any]:
        app = sopflow_app(request)
        with app.read() as s:
            sop = get_sop(s, auth.tenant_id, sop_id)
            definition = None
            if data.definition is not None:
                definition = checked_definition(s, app, auth.tenant_id, data.definition, sop.id)
            prepared = sop_forecast(s, app, sop, data.days, definition, touches=data.touches)
            s.rollback()  # read only: nothing the checks loaded may be flushed
        return prepared.run()  # outside the transaction: the replay holds no lock
