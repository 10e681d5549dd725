"""Request bodies.  msgspec rejects unknown keys and wrong types before a handler
runs; the error handler turns its messages into problem details with the field."""

from __future__ import annotations

import enum
from typing import Annotated, Any, Literal
from zoneinfo import available_timezones

import msgspec
from sopflow_sdk import FIELD_TYPES

from sopflow.api.params import BodyId
from sopflow.conditions.schema import NOT_BLANK
from sopflow.engine.customers.fields import FIELD_KEY_PATTERN
from sopflow.engine.customers.identities import SHARED_KEYS

#: Bounds on free text, stated in the OpenAPI and enforced before a handler runs.
Name = Annotated[str, msgspec.Meta(max_length=200, description="up to 200 characters")]
RequiredName = Annotated[
    str, msgspec.Meta(max_length=200, pattern=NOT_BLANK, description="1 to 200 characters, not blank")
]
Key = Annotated[
    str, msgspec.Meta(max_length=200, pattern=NOT_BLANK, description="1 to 200 characters, not blank")
]
Description = Annotated[str, msgspec.Meta(max_length=1000, description="up to 1,000 characters")]
#: An IANA time zone name, as an enum so the schema states exactly which are accepted.
TimezoneName = enum.StrEnum("TimezoneName", {zone: zone for zone in sorted(available_timezones())})
Timezone = Annotated[TimezoneName, msgspec.Meta(description="an IANA time zone name, e.g. Asia/Shanghai")]
#: The scopes a key may hold.
Scope = Literal["admin", "read", "ingest"]
#: Texts bounded at their columns' lengths (a longer one would overflow the column on Postgres).
Short = Annotated[str, msgspec.Meta(max_length=100, description="up to 100 characters")]
RequiredShort = Annotated[
    str, msgspec.Meta(max_length=100, pattern=NOT_BLANK, description="1 to 100 characters, not blank")
]
FieldKey = Annotated[
    str,
    msgspec.Meta(
        pattern=FIELD_KEY_PATTERN,
        description="lower_snake_case, 1 to 63 characters, starting with a letter",
    ),
]
#: A field's type, as an enum so the schema states which are accepted.
FieldType = Literal[FIELD_TYPES]  # type: ignore[valid-type]
#: An instant in a body or a query: RFC 3339 with an offset (naive times are refused).
INSTANT = msgspec.Meta(
    max_length=64,
    description="an ISO-8601 instant with an offset, e.g. 2026-05-01T09:00:00+08:00",
    extra_json_schema={"format": "date-time"},
)
Word = Annotated[str, msgspec.Meta(min_length=1, max_length=20, description="1 to 20 characters")]
ChannelName = Annotated[
    str, msgspec.Meta(max_length=50, pattern=NOT_BLANK, description="1 to 50 characters, not blank")
]
StaffId = Annotated[str, msgspec.Meta(min_length=1, max_length=128, description="1 to 128 characters")]
Tag = RequiredShort
Position = Annotated[int, msgspec.Meta(ge=0, le=10_000, description="0 is the first place")]
DailyCap = Annotated[int, msgspec.Meta(ge=1, le=20, description="pushes per customer per day, 1 to 20")]


class Body(msgspec.Struct, forbid_unknown_fields=True):
    pass


class TenantCreate(Body):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    timezone: Timezone = TimezoneName("Asia/Shanghai")


class TenantUpdate(Body):
    timezone: Timezone | None = None
    customer_daily_push_cap: DailyCap | None = None


class ApiKeyCreate(Body):
    scopes: Annotated[list[Scope], msgspec.Meta(min_length=1, max_length=3)]
    name: Short = ""


class FieldCreate(Body):
    key: FieldKey
    type: FieldType
    label: Name = ""
    choices: Annotated[
        list[Annotated[str, msgspec.Meta(min_length=1, max_length=200)]], msgspec.Meta(max_length=200)
    ] = msgspec.field(default_factory=list)
    description: Description = ""


class FieldUpdate(Body):
    label: Name | None = None
    description: Description | None = None
    add_choices: Annotated[list[Name], msgspec.Meta(max_length=500)] = msgspec.field(default_factory=list)


class StageIn(Body):
    name: RequiredShort


class PipelineCreate(Body):
    #: "" takes the template's name; a name given is not blank
    name: Annotated[str, msgspec.Meta(max_length=100, pattern="^$|" + NOT_BLANK)] = ""
    stages: Annotated[list[StageIn], msgspec.Meta(max_length=50)] = msgspec.field(default_factory=list)
    template: Key | None = None


class StageCreate(Body):
    name: RequiredShort
    position: Position | None = None


class StageUpdate(Body):
    name: RequiredShort | None = None
    position: Position | None = None


class IdentityIn(Body):
    channel: ChannelName
    external_id: Key
    staff_external_id: StaffId | None = None


class CustomerCreate(Body):
    display_name: Name = ""
    fields: dict[str, Any] = msgspec.field(default_factory=dict)
    tags: Annotated[list[Tag], msgspec.Meta(max_length=100)] = msgspec.field(default_factory=list)
    identities: list[IdentityIn] = msgspec.field(default_factory=list)
    timezone: Timezone | None = None
    source: Short | None = None
    owner_staff_external_id: StaffId | None = None


class CustomerUpdate(Body):
    display_name: Name | None = None
    fields: dict[str, Any] = msgspec.field(default_factory=dict)
    tags_add: Annotated[list[Tag], msgspec.Meta(max_length=100)] = msgspec.field(default_factory=list)
    tags_remove: Annotated[list[Tag], msgspec.Meta(max_length=100)] = msgspec.field(default_factory=list)
    identities: list[IdentityIn] = msgspec.field(default_factory=list)
    timezone: Timezone | None = None
    source: Short | None = None


class StageMove(Body):
    stage_id: BodyId
    #: "manual" for a move on the board, "api" for an integration (recorded in the history)
    cause: Word = "api"


class Merge(Body):
    other_customer_id: BodyId


class SharedKeyIn(Body):
    #: unionid or phone (see docs/api.md, "One customer across channels")
    # the enum stated in the schema only: the engine checks it, so one 422 still lists
    # every problem of the batch (a Literal would stop msgspec at the first)
    channel: Annotated[str, msgspec.Meta(max_length=100, extra_json_schema={"enum": list(SHARED_KEYS)})]
    external_id: Key


class RelationIn(Body):
    staff_external_id: StaffId
    added_at: Annotated[str, INSTANT] | None = None
    source: Short | None = None
    remark: Annotated[str, msgspec.Meta(max_length=200)] | None = None


class EventIn(Body):
    type: RequiredShort
    idempotency_key: Key
    identity: IdentityIn | None = None
    customer_id: BodyId | None = None
    occurred_at: Annotated[str, INSTANT] | None = None
    payload: dict[str, Any] = msgspec.field(default_factory=dict)
    fields: dict[str, Any] = msgspec.field(default_factory=dict)
    tags_add: Annotated[list[Tag], msgspec.Meta(max_length=100)] = msgspec.field(default_factory=list)
    tags_remove: Annotated[list[Tag], msgspec.Meta(max_length=100)] = msgspec.field(default_factory=list)
    display_name: Name | None = None
    source: Short | None = None
    shared_identities: Annotated[list[SharedKeyIn], msgspec.Meta(max_length=10)] = msgspec.field(
        default_factory=list
    )
    relations: Annotated[list[RelationIn], msgspec.Meta(max_length=1000)] = msgspec.field(
        default_factory=list
    )


class EventBatch(Body):
    events: Annotated[list[EventIn], msgspec.Meta(min_length=1)]


class StaffCreate(Body):
    external_id: StaffId
    name: Short = ""


class StaffUpdate(Body):
    name: Short | None = None
    left: Annotated[
        bool | None,
        msgspec.Meta(
            description="true: the member left the company (their customers' touches are held "
            "until the customers are transferred); false: they are back"
        ),
    ] = None


_CONFIG = msgspec.Meta(
    description="the account's settings, checked against the channel's declaration: "
    "see the component ChannelConfig.<channel> (a channel without one takes any object)"
)
Secret = Annotated[str, msgspec.Meta(max_length=4096)]
_SECRETS = msgspec.Meta(
    description="the account's secrets, encrypted at rest and never shown: "
    "see the component ChannelSecrets.<channel>"
)


class ChannelAccountCreate(Body):
    channel: ChannelName
    name: RequiredShort
    config: Annotated[dict[str, Any], _CONFIG] = msgspec.field(default_factory=dict)
    secrets: Annotated[dict[Key, Secret], _SECRETS] = msgspec.field(default_factory=dict)


class ChannelAccountUpdate(Body):
    name: RequiredShort | None = None
    config: Annotated[dict[str, Any], _CONFIG] | None = None
    secrets: Annotated[dict[Key, Secret], _SECRETS] | None = None


class PluginSwitch(Body):
    enabled: bool


def _amount(unit: str, most: int) -> Any:
    return Annotated[float, msgspec.Meta(ge=0, le=most, description=f"{unit}, 0 to {most:,}")]


#: The most the clock moves in one call (3650 days), split between the units so
#: that any combination the schema allows is within it.
class ClockAdvance(Body):
    seconds: _amount("seconds", 50 * 86_400) = 0  # type: ignore[valid-type]
    minutes: _amount("minutes", 100 * 1_440) = 0  # type: ignore[valid-type]
    hours: _amount("hours", 500 * 24) = 0  # type: ignore[valid-type]
    days: _amount("days", 3000) = 0  # type: ignore[valid-type]


#: Rules across a body's keys, which a type cannot carry: added to the body's
#: schema (api/body_schemas.py); the handler enforces each with its own message.
CROSS_FIELD: dict[str, dict[str, Any]] = {
    "FieldCreate": {  # choices: 1 to 200 distinct for the choice types, none for the others
        "if": {"properties": {"type": {"enum": ["choice", "multi_choice"]}}},
        "then": {
            "required": ["choices"],
            "properties": {"choices": {"minItems": 1, "maxItems": 200, "uniqueItems": True}},
        },
        "else": {"properties": {"choices": {"maxItems": 0}}},
    },
    "PipelineCreate": {
        "anyOf": [
            {
                "required": ["name", "stages"],
                "properties": {"name": {"minLength": 1}, "stages": {"minItems": 1}},
            },
            {"required": ["template"], "properties": {"template": {"type": "string"}}},
        ],
        "description": "give a name, or a template (whose name is the default)",
    },
    "EventIn": {
        "anyOf": [
            {"required": ["identity"], "properties": {"identity": {"type": "object"}}},
            {"required": ["customer_id"], "properties": {"customer_id": {"type": "integer"}}},
        ],
        "description": "name the customer by a channel identity or by customer_id",
    },
    "ClockAdvance": {  # a millisecond at least, in some unit: the clock only moves forward
        "anyOf": [
            {"required": [unit], "properties": {unit: {"minimum": 0.001}}}
            for unit in ("seconds", "minutes", "hours", "days")
        ],
        "description": "move forward by a positive amount, at most 3650 days in all",
    },
}


def to_plain(struct: Any) -> Any:
    """A Struct as plain dicts/lists, only the keys the client sent or defaulted."""
    return msgspec.to_builtins(struct)
