"""Customers: CRUD, listing with filters and cursors, stage moves, merge."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from sopflow.api.auth import Auth, needs
from sopflow.api.deps import announce_after_commit
from sopflow.api.params import Id, Limit, OptionalCursor, OptionalId
from sopflow.api.responses import shape
from sopflow.api.responses.customers import CustomerOut, CustomerPage, StageHistoryOut, StageMoveOut
from sopflow.api.schemas import CustomerCreate, CustomerUpdate, Merge, StageMove, to_plain
from sopflow.app import SopflowApp
from sopflow.db import Session
from sopflow.engine.customers.changes import edit_customer, record_change_event
from sopflow.engine.customers.erasure import erase_customer
from sopflow.engine.customers.fields import field_definitions
from sopflow.engine.customers.listing import CustomerFilter, list_customers
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
        auth: NamedDependency[Auth],
        session: NamedDependency[Session],
        cursor: OptionalCursor = None,
        limit: Limit = 50,
        tag: str | None = None,
        stage_id: OptionalId = None,
        source: str | None = None,
        churned: bool | None = None,
        channel: str | None = None,
        external_id: str | None = None,
        q: str | None = None,
    ) -> CustomerPage:
        narrowed = CustomerFilter(tag, stage_id, source, churned, channel, external_id, q)
        return shape(CustomerPage, list_customers(session, auth.tenant_id, narrowed, cursor, limit))

    @post(
        "/",
        sync_to_thread=True,
        summary="Create a customer with fields, tags and identities",
        guards=[needs("admin")],
    )
    def create(
        self,
        sopflow: NamedDependency[SopflowApp],
        auth: NamedDependency[Auth],
        session: NamedDependency[Session],
        data: JSONBody[CustomerCreate],
    ) -> CustomerOut:
        body = to_plain(data)
        defs = field_definitions(session, auth.tenant_id, sopflow.plugins)
        customer = create_customer(session, auth.tenant_id, body, defs, sopflow.now())
        tags = TagChange(tuple(tags_of(session, customer.id)))
        event = record_change_event(session, customer, "customer.created", body, sopflow.now(), tags)
        announce_after_commit(session, auth.tenant_id, [event])
        return shape(CustomerOut, customer_to_dict(session, customer))

    @get(
        "/{customer_id:int}",
        sync_to_thread=True,
        summary="One customer, with its identities and relations (every staff member following it)",
        guards=[needs("read")],
    )
    def get_one(
        self, auth: NamedDependency[Auth], session: NamedDependency[Session], customer_id: Id
    ) -> CustomerOut:
        return shape(
            CustomerOut, customer_to_dict(session, get_customer(session, auth.tenant_id, customer_id))
        )

    @patch(
        "/{customer_id:int}",
        sync_to_thread=True,
        summary="Change fields, tags, identities",
        guards=[needs("admin")],
    )
    def update(
        self,
        sopflow: NamedDependency[SopflowApp],
        auth: NamedDependency[Auth],
        session: NamedDependency[Session],
        customer_id: Id,
        data: JSONBody[CustomerUpdate],
    ) -> CustomerOut:
        body = {k: v for k, v in to_plain(data).items() if k in request_keys(data)}
        result, event = edit_customer(
            session, sopflow.plugins, auth.tenant_id, customer_id, body, sopflow.now()
        )
        announce_after_commit(session, auth.tenant_id, [event])  # entry and early-end rules see it at once
        return shape(CustomerOut, result)

    @delete(
        "/{customer_id:int}",
        sync_to_thread=True,
        summary="Erase a customer: identities, tags, stages; events are kept anonymised",
        guards=[needs("admin")],
    )
    def remove(self, auth: NamedDependency[Auth], session: NamedDependency[Session], customer_id: Id) -> None:
        erase_customer(session, auth.tenant_id, customer_id)

    @post(
        "/{customer_id:int}/stage",
        status_code=200,
        sync_to_thread=True,
        summary="Move the customer to a stage",
        guards=[needs("admin")],
    )
    def move(
        self,
        sopflow: NamedDependency[SopflowApp],
        auth: NamedDependency[Auth],
        session: NamedDependency[Session],
        customer_id: Id,
        data: JSONBody[StageMove],
    ) -> StageMoveOut:
        result, event = move_by_hand(
            session, auth.tenant_id, customer_id, data.stage_id, data.cause, sopflow.now()
        )
        if event:
            announce_after_commit(session, auth.tenant_id, [event])
        return shape(StageMoveOut, result)

    @get(
        "/{customer_id:int}/stage-history",
        sync_to_thread=True,
        summary="Every stage the customer entered and left",
        guards=[needs("read")],
    )
    def history(
        self, auth: NamedDependency[Auth], session: NamedDependency[Session], customer_id: Id
    ) -> list[StageHistoryOut]:
        get_customer(session, auth.tenant_id, customer_id)
        return shape(list[StageHistoryOut], stage_history(session, auth.tenant_id, customer_id))

    @post(
        "/{customer_id:int}/merge",
        status_code=200,
        sync_to_thread=True,
        summary="Merge another customer into this one (identities, relations, tags, fields)",
        guards=[needs("admin")],
    )
    def merge(
        self,
        sopflow: NamedDependency[SopflowApp],
        auth: NamedDependency[Auth],
        session: NamedDependency[Session],
        customer_id: Id,
        data: JSONBody[Merge],
    ) -> CustomerOut:
        survivor = merge_customers(
            session, auth.tenant_id, customer_id, data.other_customer_id, sopflow.now()
        )
        return shape(CustomerOut, customer_to_dict(session, survivor))


def request_keys(data: JSONBody[Any]) -> set[str]:
    """Keys the client actually sent differ from defaults; PATCH only applies those."""
    defaults = type(data)()
    return {
        f
        for f in data.__struct_fields__
        if msgspec.to_builtins(getattr(data, f)) != msgspec.to_builtins(getattr(defaults, f))
    }
