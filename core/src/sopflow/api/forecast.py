"""The send calendar forecast: the tenant's, and one SOP's (docs/forecast.md)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, Parameter

from sopflow.api.auth import Auth, needs
from sopflow.api.params import Id
from sopflow.api.responses import shape
from sopflow.api.responses.forecast import ForecastOut
from sopflow.app import SopflowApp
from sopflow.engine.forecast.answers import forecast_sop, forecast_tenant
from sopflow.engine.forecast.calendar import MAX_DAYS

_HORIZON = f"the horizon in days, 1 to {MAX_DAYS}"
Days = Annotated[int, Parameter(ge=1, le=MAX_DAYS, description=_HORIZON)]
BodyDays = Annotated[int, msgspec.Meta(ge=1, le=MAX_DAYS, description=_HORIZON)]


class SopForecastRequest(msgspec.Struct, forbid_unknown_fields=True):
    days: BodyDays = 40
    #: an edit to compare before saving it: the SOP as if started now with this definition
    definition: dict[str, Any] | None = None
    #: list each touch that goes out (up to 10,000) besides the counts
    touches: bool = False


# The forecast takes no request session: it loads in a read-only transaction of
# its own and replays after it ended (engine.forecast.answers).
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
        self,
        sopflow: NamedDependency[SopflowApp],
        auth: NamedDependency[Auth],
        days: Days = 40,
        touches: bool = False,
    ) -> ForecastOut:
        return shape(ForecastOut, forecast_tenant(sopflow, auth.tenant_id, days, touches))

    @post(
        "/sops/{sop_id:int}/forecast",
        sync_to_thread=True,
        status_code=200,
        summary="What this SOP (or an edit of it, not saved) will send per day, against today's data",
        guards=[needs("read")],
    )
    def sop(
        self,
        sopflow: NamedDependency[SopflowApp],
        auth: NamedDependency[Auth],
        sop_id: Id,
        data: JSONBody[SopForecastRequest],
    ) -> ForecastOut:
        answer = forecast_sop(sopflow, auth.tenant_id, sop_id, data.days, data.definition, data.touches)
        return shape(ForecastOut, answer)
