"""Request bodies.  msgspec rejects unknown keys and wrong types before a handler
runs; the error handler turns its messages into problem details with the field."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec


class Body(msgspec.Struct, forbid_unknown_fields=True):
    pass


class TenantCreate(Body):
    name: str
    timezone: str = "Asia/Shanghai"


class TenantUpdate(Body):
    timezone: str | None = None
    customer_daily_push_cap: int | None = None


class ApiKeyCreate(Body):
    scopes: list[str]
    name: str = ""


class FieldCreate(Body):
    key: str
    type: str
    label: str = ""
    choices: list[str] = msgspec.field(default_factory=list)
    description: str = ""


class FieldUpdate(Body):
    label: str | None = None
    description: str | None = None
    add_choices: list[str] = msgspec.field(default_factory=list)


class StageIn(Body):
    name: str


class PipelineCreate(Body):
    name: str = ""
    stages: list[StageIn] = msgspec.field(default_factory=list)
    template: str | None = None


class StageCreate(Body):
    name: str
    position: int | None = None


class StageUpdate(Body):
    name: str | None = None
    position: int | None = None


class IdentityIn(Body):
    channel: str
    external_id: str
    staff_external_id: str | None = None


class CustomerCreate(Body):
    display_name: str = ""
    fields: dict[str, Any] = msgspec.field(default_factory=dict)
    tags: list[str] = msgspec.field(default_factory=list)
    identities: list[IdentityIn] = msgspec.field(default_factory=list)
    timezone: str | None = None
    source: str | None = None
    owner_staff_external_id: str | None = None


class CustomerUpdate(Body):
    display_name: str | None = None
    fields: dict[str, Any] = msgspec.field(default_factory=dict)
    tags_add: list[str] = msgspec.field(default_factory=list)
    tags_remove: list[str] = msgspec.field(default_factory=list)
    identities: list[IdentityIn] = msgspec.field(default_factory=list)
    timezone: str | None = None
    source: str | None = None


class StageMove(Body):
    stage_id: int
    #: "manual" for a move on the board, "api" for an integration (recorded in the history)
    cause: str = "api"


class Merge(Body):
    other_customer_id: int


class EventIn(Body):
    type: str
    idempotency_key: str
    identity: IdentityIn | None = None
    customer_id: int | None = None
    occurred_at: str | None = None
    payload: dict[str, Any] = msgspec.field(default_factory=dict)
    fields: dict[str, Any] = msgspec.field(default_factory=dict)
    tags_add: list[str] = msgspec.field(default_factory=list)
    tags_remove: list[str] = msgspec.field(default_factory=list)
    display_name: str | None = None
    source: str | None = None


class EventBatch(Body):
    events: list[EventIn]


class StaffCreate(Body):
    external_id: str
    name: str = ""


class StaffUpdate(Body):
    name: str


_CONFIG = msgspec.Meta(
    description="the account's settings, checked against the channel's declaration: "
    "see the component ChannelConfig.<channel> (a channel without one takes any object)"
)
_SECRETS = msgspec.Meta(
    description="the account's secrets, encrypted at rest and never shown: "
    "see the component ChannelSecrets.<channel>"
)


class ChannelAccountCreate(Body):
    channel: str
    name: str
    config: Annotated[dict[str, Any], _CONFIG] = msgspec.field(default_factory=dict)
    secrets: Annotated[dict[str, str], _SECRETS] = msgspec.field(default_factory=dict)


class ChannelAccountUpdate(Body):
    name: str | None = None
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
