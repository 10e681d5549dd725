"""Request bodies.  msgspec rejects unknown keys and wrong types before a handler
runs; the error handler turns its messages into problem details with the field."""

from __future__ import annotations

import enum
from typing import Annotated, Any, Literal
from zoneinfo import available_timezones

import msgspec

from sopflow.api.params import BodyId

#: Bounds on free text, stated in the OpenAPI and enforced before a handler runs.
Name = Annotated[str, msgspec.Meta(max_length=200, description="up to 200 characters")]
RequiredName = Annotated[str, msgspec.Meta(min_length=1, max_length=200, description="1 to 200 characters")]
Key = Annotated[str, msgspec.Meta(min_length=1, max_length=200, description="1 to 200 characters")]
Description = Annotated[str, msgspec.Meta(max_length=2000, description="up to 2,000 characters")]
#: An IANA time zone name, as an enum so the schema states exactly which are accepted.
TimezoneName = enum.StrEnum("TimezoneName", {zone: zone for zone in sorted(available_timezones())})
Timezone = Annotated[TimezoneName, msgspec.Meta(description="an IANA time zone name, e.g. Asia/Shanghai")]
#: The scopes a key may hold.
Scope = Literal["admin", "read", "ingest"]
#: Texts bounded at their columns' lengths (a longer one would overflow the column on Postgres).
Short = Annotated[str, msgspec.Meta(max_length=100, description="up to 100 characters")]
RequiredShort = Annotated[str, msgspec.Meta(min_length=1, max_length=100, description="1 to 100 characters")]
FieldKey = Annotated[str, msgspec.Meta(min_length=1, max_length=63, description="1 to 63 characters")]
Word = Annotated[str, msgspec.Meta(min_length=1, max_length=20, description="1 to 20 characters")]
ChannelName = Annotated[str, msgspec.Meta(min_length=1, max_length=50, description="1 to 50 characters")]
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
    type: Word
    label: Name = ""
    choices: Annotated[list[Name], msgspec.Meta(max_length=500)] = msgspec.field(default_factory=list)
    description: Description = ""


class FieldUpdate(Body):
    label: Name | None = None
    description: Description | None = None
    add_choices: Annotated[list[Name], msgspec.Meta(max_length=500)] = msgspec.field(default_factory=list)


class StageIn(Body):
    name: RequiredShort


class PipelineCreate(Body):
    name: Short = ""
    stages: Annotated[list[StageIn], msgspec.Meta(max_length=100)] = msgspec.field(default_factory=list)
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
    channel: ChannelName
    external_id: Key


class RelationIn(Body):
    staff_external_id: StaffId
    added_at: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    source: Short | None = None
    remark: Annotated[str, msgspec.Meta(max_length=200)] | None = None


class EventIn(Body):
    type: RequiredShort
    idempotency_key: Key
    identity: IdentityIn | None = None
    customer_id: BodyId | None = None
    occurred_at: Annotated[str, msgspec.Meta(max_length=64)] | None = None
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
    name: Short


_CONFIG = msgspec.Meta(
    description="the account's settings, checked against the channel's declaration: "
    "see the component ChannelConfig.<channel> (a channel without one takes any object)"
)
_SECRETS = msgspec.Meta(
    description="the account's secrets, encrypted at rest and never shown: "
    "see the component ChannelSecrets.<channel>"
)


class ChannelAccountCreate(Body):
    channel: ChannelName
    name: RequiredShort
    config: Annotated[dict[str, Any], _CONFIG] = msgspec.field(default_factory=dict)
    secrets: Annotated[dict[str, str], _SECRETS] = msgspec.field(default_factory=dict)


class ChannelAccountUpdate(Body):
    name: RequiredShort | None = None
    config: Annotated[dict[str, Any], _CONFIG] | None = None
    secrets: Annotated[dict[str, str], _SECRETS] | None = None


class PluginSwitch(Body):
    enabled: bool


class ClockAdvance(Body):
    seconds: float = 0
    minutes: float = 0
    hours: float = 0
    days: float = 0


def to_plain(struct: Any) -> Any:
    """A Struct as plain dicts/lists, only the keys the client sent or defaulted."""
    return msgspec.to_builtins(struct)
