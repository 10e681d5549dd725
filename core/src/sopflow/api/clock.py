"""The manual clock, for tests, demos and previews.  Refused unless
``SOPFLOW_CLOCK=manual``, so production time can never be moved by a caller."""

from __future__ import annotations

from datetime import timedelta

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from sopflow.api.auth import Auth, needs
from sopflow.api.responses.settings import ClockOut
from sopflow.api.schemas import ClockAdvance
from sopflow.app import SopflowApp
from sopflow.errors import Conflict, InvalidInput

MAX_ADVANCE = timedelta(days=3650)


class ClockController(Controller):
    path = "/api/v1/clock"
    tags = ["clock"]

    @get("/", sync_to_thread=True, summary="The engine's current time", guards=[needs("read")])
    def now(self, sopflow: NamedDependency[SopflowApp], auth: NamedDependency[Auth]) -> ClockOut:
        return ClockOut(now=sopflow.now().isoformat(), manual=sopflow.clock.manual)

    @post(
        "/advance",
        sync_to_thread=True,
        status_code=200,
        summary="Move the manual clock forward",
        guards=[needs("admin")],
    )
    def advance(
        self, sopflow: NamedDependency[SopflowApp], auth: NamedDependency[Auth], data: JSONBody[ClockAdvance]
    ) -> ClockOut:
        app = sopflow
        if not app.clock.manual:
            raise Conflict(
                "the clock is the system clock; start sopflow with SOPFLOW_CLOCK=manual to move it"
            )
        try:
            delta = timedelta(seconds=data.seconds, minutes=data.minutes, hours=data.hours, days=data.days)
        except OverflowError:
            delta = MAX_ADVANCE * 2
        if delta <= timedelta(0) or delta > MAX_ADVANCE:
            raise InvalidInput([("seconds", "advance by a positive amount of at most 3650 days")])
        return ClockOut(now=app.clock.advance(delta).isoformat(), manual=True)
