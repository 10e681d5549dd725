"""Ingest (``POST /api/v1/events``) and the event log."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from sopflow.api.auth import Auth, needs
from sopflow.api.deps import announce_after_commit
from sopflow.api.params import Limit, OptionalCursor, OptionalId
from sopflow.api.responses import shape
from sopflow.api.responses.pipelines import EventPage, IngestResult
from sopflow.api.schemas import EventBatch, to_plain
from sopflow.app import SopflowApp
from sopflow.db import Session
from sopflow.engine.customers.event_log import created_events, list_events
from sopflow.engine.customers.fields import field_definitions
from sopflow.engine.customers.ingest import ingest
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
        session: NamedDependency[Session],
        data: JSONBody[EventBatch],
    ) -> IngestResult:
        if not data.events:
            raise InvalidInput([("events", "send at least one event")])
        if len(data.events) > sopflow.settings.max_batch_events:
            raise InvalidInput(
                [("events", f"at most {sopflow.settings.max_batch_events} events per batch; split it")]
            )
        raw = [{k: v for k, v in to_plain(e).items() if v is not None} for e in data.events]
        defs = field_definitions(session, auth.tenant_id, sopflow.plugins)
        outcomes = ingest(session, auth.tenant_id, raw, defs, sopflow.now(), source="api")
        announce_after_commit(session, auth.tenant_id, created_events(session, outcomes))
        return shape(IngestResult, {"results": outcomes})

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
