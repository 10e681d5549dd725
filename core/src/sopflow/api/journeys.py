"""Journeys: CRUD, start/stop, sync with progress, the board and the stats."""

from __future__ import annotations

from typing import Any

from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from sopflow.api.auth import Auth, needs
from sopflow.api.params import Id, Limit, OptionalCursor, OptionalId
from sopflow.api.responses import shape
from sopflow.api.responses.journeys import BoardOut, JourneyOut, JourneyStatsOut, JourneySyncOut
from sopflow.app import SopflowApp
from sopflow.db import Session
from sopflow.engine.journeys.manage import (
    create_journey,
    delete_journey,
    get_journey,
    journey_to_dict,
    list_journeys,
    start_journey,
    stop_journey,
    update_journey,
)
from sopflow.engine.journeys.sync import request_sync
from sopflow.engine.journeys.views import board, stats

A = NamedDependency[Auth]
S = NamedDependency[Session]
App = NamedDependency[SopflowApp]


class JourneyController(Controller):
    path = "/api/v1/journeys"
    tags = ["journeys"]

    @get(
        "/",
        sync_to_thread=True,
        summary="List journeys with their stages, switches and sync state",
        guards=[needs("read")],
    )
    def list_journeys(self, auth: A, session: S) -> list[JourneyOut]:
        return shape(list[JourneyOut], list_journeys(session, auth.tenant_id))

    @post(
        "/",
        sync_to_thread=True,
        summary="Create a journey: ordered stages with entry rules and reminders",
        guards=[needs("admin")],
    )
    def create(self, sopflow: App, auth: A, session: S, data: JSONBody[Any]) -> JourneyOut:
        journey = create_journey(session, sopflow, auth.tenant_id, data, sopflow.now())
        return shape(JourneyOut, journey_to_dict(session, journey))

    @get(
        "/{journey_id:int}",
        sync_to_thread=True,
        summary="One journey (with its sync progress)",
        guards=[needs("read")],
    )
    def get_one(self, auth: A, session: S, journey_id: Id) -> JourneyOut:
        return shape(JourneyOut, journey_to_dict(session, get_journey(session, auth.tenant_id, journey_id)))

    @patch(
        "/{journey_id:int}",
        sync_to_thread=True,
        summary="Edit a journey (409 while its sync runs)",
        guards=[needs("admin")],
    )
    def update(self, sopflow: App, auth: A, session: S, journey_id: Id, data: JSONBody[Any]) -> JourneyOut:
        journey = get_journey(session, auth.tenant_id, journey_id, lock=True)
        changed = update_journey(session, sopflow, journey, data, sopflow.now())
        return shape(JourneyOut, journey_to_dict(session, changed))

    @delete(
        "/{journey_id:int}",
        sync_to_thread=True,
        summary="Delete a journey that never placed anyone",
        guards=[needs("admin")],
    )
    def remove(self, sopflow: App, auth: A, session: S, journey_id: Id) -> None:
        delete_journey(session, get_journey(session, auth.tenant_id, journey_id, lock=True), sopflow.now())

    @post(
        "/{journey_id:int}/start",
        status_code=200,
        sync_to_thread=True,
        summary="Activate: stage rules place customers",
        guards=[needs("admin")],
    )
    def start(self, sopflow: App, auth: A, session: S, journey_id: Id) -> JourneyOut:
        journey = get_journey(session, auth.tenant_id, journey_id, lock=True)
        return shape(
            JourneyOut, journey_to_dict(session, start_journey(session, sopflow, journey, sopflow.now()))
        )

    @post(
        "/{journey_id:int}/stop",
        status_code=200,
        sync_to_thread=True,
        summary="Deactivate; pending reminders are cancelled",
        guards=[needs("admin")],
    )
    def stop(self, sopflow: App, auth: A, session: S, journey_id: Id) -> JourneyOut:
        journey = get_journey(session, auth.tenant_id, journey_id, lock=True)
        return shape(JourneyOut, journey_to_dict(session, stop_journey(session, journey, sopflow.now())))

    @post(
        "/{journey_id:int}/sync",
        sync_to_thread=True,
        status_code=202,
        summary="Place every existing customer that matches a stage rule (runs in the background)",
        guards=[needs("admin")],
    )
    def sync(self, sopflow: App, auth: A, session: S, journey_id: Id) -> JourneySyncOut:
        journey = get_journey(session, auth.tenant_id, journey_id, lock=True)
        request_sync(session, journey, sopflow.now())
        return shape(JourneySyncOut, journey_to_dict(session, journey)["sync"])

    @get(
        "/{journey_id:int}/board",
        sync_to_thread=True,
        summary="Stages with counts and cards (tags, owner, last activity); filter by tag, owner, text",
        guards=[needs("read")],
    )
    def get_board(
        self,
        auth: A,
        session: S,
        journey_id: Id,
        limit: Limit = 20,
        stage_id: OptionalId = None,
        cursor: OptionalCursor = None,
        tag: str | None = None,
        owner_staff_id: OptionalId = None,
        q: str | None = None,
    ) -> BoardOut:
        journey = get_journey(session, auth.tenant_id, journey_id)
        found = board(
            session,
            journey,
            limit=limit,
            stage_id=stage_id,
            cursor=cursor,
            tag=tag,
            owner_staff_id=owner_staff_id,
            q=q,
        )
        return shape(BoardOut, found)

    @get(
        "/{journey_id:int}/stats",
        sync_to_thread=True,
        summary="Customers per stage now and over time",
        guards=[needs("read")],
    )
    def get_stats(self, sopflow: App, auth: A, session: S, journey_id: Id, days: int = 30) -> JourneyStatsOut:
        journey = get_journey(session, auth.tenant_id, journey_id)
        return shape(JourneyStatsOut, stats(session, journey, sopflow.now(), days))
