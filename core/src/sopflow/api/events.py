"""Ingest (``POST /api/v1/events``) and the event log."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from sopflow.api.auth import Auth, needs
from sopflow.api.ingest_writer import IngestWriter
from sopflow.api.params import Limit, OptionalCursor, OptionalId
from sopflow.api.responses import shape
from sopflow.api.responses.pipelines import EventPage, IngestResult
from sopflow.api.schemas import EventBatch, to_plain
from sopflow.app import SopflowApp
from sopflow.db import Session
from sopflow.engine.customers.event_log import list_events
from sopflow.errors import InvalidInput


class EventController(Controller):
    path = "/api/v1/events"
    tags = ["events"]

    @post(
        "/",
        sync_to_thread=True,
        status_code=200,
        summary="Ingest a batch of events; each outcome is created or duplicate",
        guards=[needs("ingest")],
    )
    def ingest_batch(
        self,
        sopflow: NamedDependency[SopflowApp],
        auth: NamedDependency[Auth],
        ingest_writer: NamedDependency[IngestWriter],
        data: JSONBody[EventBatch],
    ) -> IngestResult:
        if not data.events:
            raise InvalidInput([("events", "send at least one event")])
        if len(data.events) > sopflow.settings.max_batch_events:
            raise InvalidInput(
                [("events", f"at most {sopflow.settings.max_batch_events} events per batch; split it")]
            )
        raw = [{k: v for k, v in to_plain(e).items() if v is not None} for e in data.events]
        # no session of its own: the writer's transaction holds this batch and its neighbours'
        return shape(IngestResult, {"results": ingest_writer.submit(auth.tenant_id, raw)})

    @get(
        "/",
        sync_to_thread=True,
        summary="The event log, oldest first (cursor pagination)",
        guards=[needs("read")],
    )
    def list_events(
        self,
        auth: NamedDependency[Auth],
        session: NamedDependency[Session],
        cursor: OptionalCursor = None,
        limit: Limit = 100,
        type: str | None = None,
        customer_id: OptionalId = None,
    ) -> EventPage:
        return shape(EventPage, list_events(session, auth.tenant_id, type, customer_id, cursor, limit))
