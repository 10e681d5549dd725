"""Journeys: CRUD, start/stop, sync with progress, the board and the stats."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from litestar import Controller, Request, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from sopflow.api.auth import Auth, needs, sopflow_app
from sopflow.api.params import Id, Limit, OptionalCursor, OptionalId
from sopflow.engine.journeys.manage import (
    create_journey,
    delete_journey,
    get_journey,
    journey_to_dict,
    start_journey,
    stop_journey,
    update_journey,
)
from sopflow.engine.journeys.sync import request_sync
from sopflow.engine.journeys.views import board, stats
from sopflow.models import Journey


class JourneyController(Controller):
    path = "/api/v1/journeys"
    tags = ["journeys"]

    @get(
        "/",
        sync_to_thread=True,
        summary="List journeys with their stages, switches and sync state",
        guards=[needs("read")],
    )
    def list_journeys(self, request: Request, auth: NamedDependency[Auth]) -> list[dict[str, Any]]:
        with sopflow_app(request).read() as s:
            rows = s.scalars(
                sa.select(Journey).where(Journey.tenant_id == auth.tenant_id).order_by(Journey.id)
            )
            return [journey_to_dict(s, j) for j in rows]

    @post(
        "/",
        sync_to_thread=True,
        summary="Create a journey: ordered stages with entry rules and reminders",
        guards=[needs("admin")],
    )
    def create(self, request: Request, auth: NamedDependency[Auth], data: JSONBody[Any]) -> dict[str, Any]:
        app = sopflow_app(request)
        with app.tx() as s:
            return journey_to_dict(s, create_journey(s, app, auth.tenant_id, data, app.now()))

    @get(
        "/{journey_id:int}",
        sync_to_thread=True,
        summary="One journey (with its sync progress)",
        guards=[needs("read")],
    )
    def get_one(self, request: Request, auth: NamedDependency[Auth], journey_id: Id) -> dict[str, Any]:
        with sopflow_app(request).read() as s:
            return journey_to_dict(s, get_journey(s, auth.tenant_id, journey_id))

    @patch(
        "/{journey_id:int}",
        sync_to_thread=True,
        summary="Edit a journey (409 while its sync runs)",
        guards=[needs("admin")],
    )
    def update(
        self, request: Request, auth: NamedDependency[Auth], journey_id: Id, data: JSONBody[Any]
    ) -> dict[str, Any]:
        app = sopflow_app(request)
        with app.tx() as s:
            journey = get_journey(s, auth.tenant_id, journey_id, lock=True)
            return journey_to_dict(s, update_journey(s, app, journey, data, app.now()))

    @delete(
        "/{journey_id:int}",
        sync_to_thread=True,
        summary="Delete a journey that never placed anyone",
        guards=[needs("admin")],
    )
    def remove(self, request: Request, auth: NamedDependency[Auth], journey_id: Id) -> None:
        app = sopflow_app(request)
        with app.tx() as s:
            delete_journey(s, get_journey(s, auth.tenant_id, journey_id, lock=True), app.now())

    @post(
        "/{journey_id:int}/start",
        status_code=200,
        sync_to_thread=True,
        summary="Activate: stage rules place customers",
        guards=[needs("admin")],
    )
    def start(self, request: Request, auth: NamedDependency[Auth], journey_id: Id) -> dict[str, Any]:
        app = sopflow_app(request)
        with app.tx() as s:
            journey = get_journey(s, auth.tenant_id, journey_id, lock=True)
            return journey_to_dict(s, start_journey(s, app, journey, app.now()))

    @post(
        "/{journey_id:int}/stop",
        status_code=200,
        sync_to_thread=True,
        summary="Deactivate; pending reminders are cancelled",
        guards=[needs("admin")],
    )
    def stop(self, request: Request, auth: NamedDependency[Auth], journey_id: Id) -> dict[str, Any]:
        app = sopflow_app(request)
        with app.tx() as s:
            journey = get_journey(s, auth.tenant_id, journey_id, lock=True)
            return journey_to_dict(s, stop_journey(s, journey, app.now()))

    @post(
        "/{journey_id:int}/sync",
        sync_to_thread=True,
        status_code=202,
        summary="Place every existing customer that matches a stage rule (runs in the background)",
        guards=[needs("admin")],
    )
    def sync(self, request: Request, auth: NamedDependency[Auth], journey_id: Id) -> dict[str, Any]:
        app = sopflow_app(request)
        with app.tx() as s:
            journey = get_journey(s, auth.tenant_id, journey_id, lock=True)
            request_sync(s, journey, app.now())
            return journey_to_dict(s, journey)["sync"]

    @get(
        "/{journey_id:int}/board",
        sync_to_thread=True,
        summary="Stages with counts and cards (tags, owner, last activity); filter by tag, owner, text",
        guards=[needs("read")],
    )
    def get_board(
        self,
        request: Request,
        auth: NamedDependency[Auth],
        journey_id: Id,
        limit: Limit = 20,
        stage_id: OptionalId = None,
        cursor: OptionalCursor = None,
        tag: str | None = None,
        owner_staff_id: OptionalId = None,
        q: str | None = None,
    ) -> dict[str, Any]:
        with sopflow_app(request).read() as s:
            journey = get_journey(s, auth.tenant_id, journey_id)
            return board(
                s,
                journey,
                limit=limit,
                stage_id=stage_id,
                cursor=cursor,
                tag=tag,
                owner_staff_id=owner_staff_id,
                q=q,
            )

    @get(
        "/{journey_id:int}/stats",
        sync_to_thread=True,
        summary="Customers per stage now and over time",
        guards=[needs("read")],
    )
    def get_stats(
        self, request: Request, auth: NamedDependency[Auth], journey_id: Id, days: int = 30
    ) -> dict[str, Any]:
        app = sopflow_app(request)
        with app.read() as s:
            return stats(s, get_journey(s, auth.tenant_id, journey_id), app.now(), days)
