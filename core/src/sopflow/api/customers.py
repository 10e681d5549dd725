"""Customers: CRUD, listing with filters and cursors, stage moves, merge."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from litestar import Controller, Request, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from sopflow.api.auth import Auth, needs, sopflow_app
from sopflow.api.params import Id, Limit, OptionalCursor, OptionalId
from sopflow.api.schemas import CustomerCreate, CustomerUpdate, Merge, StageMove, to_plain
from sopflow.engine.customers.changes import edit_customer, record_change_event
from sopflow.engine.customers.fields import field_definitions
from sopflow.engine.customers.records import (
    TagChange,
    create_customer,
    customer_to_dict,
    get_customer,
    merge_customers,
    tags_of,
)
from sopflow.engine.journeys.moves import move_by_hand
from sopflow.engine.journeys.pipelines import stage_history
from sopflow.models import (
    ChannelIdentity,
    Customer,
    CustomerRelation,
    CustomerStage,
    CustomerTag,
    Event,
    StageHistory,
)
from sopflow.pagination import page


class CustomerController(Controller):
    path = "/api/v1/customers"
    tags = ["customers"]

    @get(
        "/",
        sync_to_thread=True,
        summary="List customers (filters, cursor pagination)",
        guards=[needs("read")],
    )
    def list_customers(
        self,
        request: Request,
        auth: NamedDependency[Auth],
        cursor: OptionalCursor = None,
        limit: Limit = 50,
        tag: str | None = None,
        stage_id: OptionalId = None,
        source: str | None = None,
        churned: bool | None = None,
        channel: str | None = None,
        external_id: str | None = None,
        q: str | None = None,
    ) -> dict[str, Any]:
        query = sa.select(Customer).where(
            Customer.tenant_id == auth.tenant_id, Customer.merged_into_id.is_(None)
        )
        if tag is not None:
            query = query.where(
                sa.exists().where(CustomerTag.customer_id == Customer.id, CustomerTag.tag == tag)
            )
        if stage_id is not None:
            query = query.where(
                sa.exists().where(
                    CustomerStage.customer_id == Customer.id, CustomerStage.stage_id == stage_id
                )
            )
        if source is not None:
            query = query.where(Customer.source == source)
        if churned is not None:
            query = query.where(
                Customer.churned_at.is_not(None) if churned else Customer.churned_at.is_(None)
            )
        if external_id is not None:
            cond = [ChannelIdentity.customer_id == Customer.id, ChannelIdentity.external_id == external_id]
            if channel is not None:
                cond.append(ChannelIdentity.channel == channel)
            query = query.where(sa.exists().where(*cond))
        if q:
            query = query.where(Customer.display_name.contains(q, autoescape=True))
        with sopflow_app(request).read() as s:
            rows, next_cursor = page(s, query, Customer.id, cursor, limit)
            return {"items": [customer_to_dict(s, c) for c in rows], "next_cursor": next_cursor}

    @post(
        "/",
        sync_to_thread=True,
        summary="Create a customer with fields, tags and identities",
        guards=[needs("admin")],
    )
    def create(
        self, request: Request, auth: NamedDependency[Auth], data: JSONBody[CustomerCreate]
    ) -> dict[str, Any]:
        app = sopflow_app(request)
        body = to_plain(data)
        with app.tx() as s:
            defs = field_definitions(s, auth.tenant_id, app.plugins)
            customer = create_customer(s, auth.tenant_id, body, defs, app.now())
            tags = TagChange(tuple(tags_of(s, customer.id)))
            event = record_change_event(s, customer, "customer.created", body, app.now(), tags)
            result = customer_to_dict(s, customer)
        app.announce(auth.tenant_id, [event])
        return result

    @get(
        "/{customer_id:int}",
        sync_to_thread=True,
        summary="One customer, with its identities and relations (every staff member following it)",
        guards=[needs("read")],
    )
    def get_one(self, request: Request, auth: NamedDependency[Auth], customer_id: Id) -> dict[str, Any]:
        with sopflow_app(request).read() as s:
            return customer_to_dict(s, get_customer(s, auth.tenant_id, customer_id))

    @patch(
        "/{customer_id:int}",
        sync_to_thread=True,
        summary="Change fields, tags, identities",
        guards=[needs("admin")],
    )
    def update(
        self, request: Request, auth: NamedDependency[Auth], customer_id: Id, data: JSONBody[CustomerUpdate]
    ) -> dict[str, Any]:
        app = sopflow_app(request)
        body = {k: v for k, v in to_plain(data).items() if k in request_keys(data)}
        with app.tx() as s:
            result, event = edit_customer(s, app.plugins, auth.tenant_id, customer_id, body, app.now())
        app.announce(auth.tenant_id, [event])  # entry and early-end rules see the change at once
        return result

    @delete(
        "/{customer_id:int}",
        sync_to_thread=True,
        summary="Erase a customer: identities, tags, stages; events are kept anonymised",
        guards=[needs("admin")],
    )
    def remove(self, request: Request, auth: NamedDependency[Auth], customer_id: Id) -> None:
        with sopflow_app(request).tx() as s:
            c = get_customer(s, auth.tenant_id, customer_id, lock=True)
            for model in (ChannelIdentity, CustomerRelation, CustomerTag, CustomerStage, StageHistory):
                s.execute(sa.delete(model).where(model.customer_id == c.id))
            s.execute(sa.update(Event).where(Event.customer_id == c.id).values(customer_id=None, payload={}))
            s.execute(sa.update(Customer).where(Customer.merged_into_id == c.id).values(merged_into_id=None))
            s.delete(c)

    @post(
        "/{customer_id:int}/stage",
        status_code=200,
        sync_to_thread=True,
        summary="Move the customer to a stage",
        guards=[needs("admin")],
    )
    def move(
        self, request: Request, auth: NamedDependency[Auth], customer_id: Id, data: JSONBody[StageMove]
    ) -> dict[str, Any]:
        app = sopflow_app(request)
        with app.tx() as s:
            result, event = move_by_hand(s, auth.tenant_id, customer_id, data.stage_id, data.cause, app.now())
        if event:
            app.announce(auth.tenant_id, [event])
        return result

    @get(
        "/{customer_id:int}/stage-history",
        sync_to_thread=True,
        summary="Every stage the customer entered and left",
        guards=[needs("read")],
    )
    def history(self, request: Request, auth: NamedDependency[Auth], customer_id: Id) -> list[dict[str, Any]]:
        with sopflow_app(request).read() as s:
            get_customer(s, auth.tenant_id, customer_id)
            return stage_history(s, auth.tenant_id, customer_id)

    @post(
        "/{customer_id:int}/merge",
        status_code=200,
        sync_to_thread=True,
        summary="Merge another customer into this one (identities, relations, tags, fields)",
        guards=[needs("admin")],
    )
    def merge(
        self, request: Request, auth: NamedDependency[Auth], customer_id: Id, data: JSONBody[Merge]
    ) -> dict[str, Any]:
        app = sopflow_app(request)
        with app.tx() as s:
            survivor = merge_customers(s, auth.tenant_id, customer_id, data.other_customer_id, app.now())
            return customer_to_dict(s, survivor)


def request_keys(data: JSONBody[Any]) -> set[str]:
    """Keys the client actually sent differ from defaults; PATCH only applies those."""
    import msgspec

    defaults = type(data)()
    return {
        f
        for f in data.__struct_fields__
        if msgspec.to_builtins(getattr(data, f)) != msgspec.to_builtins(getattr(defaults, f))
    }
