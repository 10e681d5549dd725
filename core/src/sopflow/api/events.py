"""Ingest (``POST /api/v1/events``) and the event log."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from sopflow.api.auth import Auth, needs, sopflow_app
from sopflow.api.params import Limit, OptionalCursor, OptionalId
from sopflow.api.schemas import EventBatch, to_plain
from sopflow.engine.customers.fields import field_definitions
from sopflow.engine.customers.ingest import event_to_dict, ingest
from sopflow.errors import InvalidInput
from sopflow.models import Event
from sopflow.pagination import page


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
        self, request: Request, auth: NamedDependency[Auth], data: JSONBody[EventBatch]
    ) -> dict[str, Any]:
        app = sopflow_app(request)
        if not data.events:
            raise InvalidInput([("events", "send at least one event")])
        if len(data.events) > app.settings.max_batch_events:
            raise InvalidInput(
                [("events", f"at most {app.settings.max_batch_events} events per batch; split it")]
            )
        raw = [{k: v for k, v in to_plain(e).items() if v is not None} for e in data.events]
        with app.tx() as s:
            defs = field_definitions(s, auth.tenant_id, app.plugins)
            outcomes = ingest(s, auth.tenant_id, raw, defs, app.now(), source="api")
            created_ids = [o["event_id"] for o in outcomes if o["status"] == "created"]
            created = [event_to_dict(e) for e in s.scalars(sa.select(Event).where(Event.id.in_(created_ids)))]
        app.announce(auth.tenant_id, created)
        return {"results": outcomes}

    @get(
        "/",
        sync_to_thread=True,
        summary="The event log, oldest first (cursor pagination)",
        guards=[needs("read")],
    )
    def list_events(
        self,
        request: Request,
        auth: NamedDependency[Auth],
        cursor: OptionalCursor = None,
        limit: Limit = 100,
        type: str | None = None,
        customer_id: OptionalId = None,
    ) -> dict[str, Any]:
        query = sa.select(Event).where(Event.tenant_id == auth.tenant_id)
        if type is not None:
            query = query.where(Event.type == type)
        if customer_id is not None:
            query = query.where(Event.customer_id == customer_id)
        with sopflow_app(request).read() as s:
            rows, next_cursor = page(s, query, Event.id, cursor, limit)
            return {"items": [event_to_dict(e) for e in rows], "next_cursor": next_cursor}
