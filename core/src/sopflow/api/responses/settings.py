"""Field definitions, plugins and the clock as the API shows them."""

from __future__ import annotations

from typing import Any, Literal

from sopflow.api.responses import Instant, Out


class FieldOut(Out):
    """A customer field: the tenant's own, or a plugin's (read-only)."""

    key: str
    type: str
    label: str
    choices: list[str]
    description: str
    plugin: str | None
    read_only: bool


class PluginOut(Out):
    """An installed plugin and whether it is on for the tenant."""

    name: str
    distribution: str | None
    version: str | None
    hooks: list[str]
    default: bool
    enabled: bool


class ClockOut(Out):
    now: Instant
    manual: bool


class ChannelAccountOut(Out):
    """A channel account: the names of its stored secrets, never their values."""

    id: int
    channel: str
    name: str
    #: the channel's declared plain settings (ChannelConfig.<channel>, api/response_schemas.py);
    #: any object for a channel that declares none
    config: dict[str, Any]
    secret_keys: list[str]
    created_at: Instant


class HealthOut(Out):
    """``ok`` with the database reachable (200); ``degraded`` without (503)."""

    status: Literal["ok", "degraded"]
    database: Literal["ok", "unavailable"]
    clock: Literal["manual", "system"]
