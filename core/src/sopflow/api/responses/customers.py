"""Customers as the API shows them (engine.customers.records.customer_to_dict)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from sopflow.api.responses import Instant, Out

#: A field's stored value (engine/customers/fields.py): text and choice as strings,
#: number as a number, bool as a boolean, date as ``YYYY-MM-DD``, datetime as
#: ISO 8601 in UTC, multi-choice as a list of strings.  A cleared field is absent, never null.
#: Keys are the tenant's (lower_snake_case) or a plugin's, which may be dotted (``orders.count``).
FieldValue = str | int | float | bool | list[str]
Fields = Annotated[
    dict[str, FieldValue],
    msgspec.Meta(
        description="field key → value: text and choice as strings, number as a number, bool as a "
        "boolean, date as YYYY-MM-DD, datetime as ISO 8601 in UTC, multi_choice as a list of strings"
    ),
]


class IdentityOut(Out):
    channel: str
    external_id: str
    staff_external_id: str | None


class RelationOut(Out):
    """One staff member following the customer on one channel."""

    staff_id: int
    staff_external_id: str
    channel: str
    added_at: Instant
    source: str | None
    remark: str | None
    active: bool
    ended_at: Instant | None
    end_reason: str | None


class CustomerStageOut(Out):
    pipeline_id: int
    stage_id: int
    entered_at: Instant


class CustomerOut(Out):
    id: int
    display_name: str
    fields: Fields
    tags: list[str]
    identities: list[IdentityOut]
    relations: list[RelationOut]
    timezone: str | None
    source: str | None
    owner_staff_id: int | None
    churned: bool
    churned_at: Instant | None
    stages: list[CustomerStageOut]
    created_at: Instant
    updated_at: Instant


class CustomerPage(Out):
    items: list[CustomerOut]
    next_cursor: str | None


class StageHistoryOut(Out):
    pipeline_id: int
    stage_id: int
    entered_at: Instant
    left_at: Instant | None
    cause: str


class StageMoveOut(Out):
    moved: bool
    customer: CustomerOut
