"""The frozen records plugins register through ``register_*`` hooks.

Core owns the registry: it stamps each record with the registering plugin's name
and fails at startup on a duplicate, naming the item and both plugins.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

import attrs

FieldType = Literal["text", "number", "bool", "date", "datetime", "choice", "multi_choice"]
FIELD_TYPES: tuple[str, ...] = (
    "text",
    "number",
    "bool",
    "date",
    "datetime",
    "choice",
    "multi_choice",
)


def _check_key(instance: Any, attribute: attrs.Attribute, value: str) -> None:
    import re

    if not re.fullmatch(r"[a-z][a-z0-9_]*(\.[a-zA-Z][a-zA-Z0-9_]*)?", value):
        raise ValueError(
            f"{type(instance).__name__}.{attribute.name}={value!r}: use lower_snake_case, "
            "optionally prefixed by the plugin ('orders.total_spend')"
        )


@attrs.frozen
class FieldSpec:
    """A customer field a plugin contributes.  Read-only for API users."""

    key: str = attrs.field(validator=_check_key)
    type: str = attrs.field(validator=attrs.validators.in_(FIELD_TYPES))
    label: str = ""
    choices: tuple[str, ...] = ()
    description: str = ""


@attrs.frozen
class StageSpec:
    name: str
    description: str = ""


@attrs.frozen
class PipelineSpec:
    """A pipeline template (ordered stages) a plugin brings."""

    key: str = attrs.field(validator=_check_key)
    name: str = ""
    stages: tuple[StageSpec, ...] = ()


@attrs.frozen
class TriggerSpec:
    """An event type a plugin emits, with the JSON schema of its payload."""

    event_type: str
    description: str = ""
    payload_schema: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class ActionSpec:
    """Something an SOP step can do.  ``run(context, params)`` does the work."""

    name: str
    run: Callable[..., Any]
    description: str = ""
    params_schema: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class ChannelSpec:
    """A touchpoint.  ``factory(config, secrets)`` builds a ``Channel`` instance."""

    name: str
    factory: Callable[..., Any]
    description: str = ""


@attrs.frozen
class RouteSpec:
    """An inbound HTTP route a plugin serves, mounted under ``/plugins/<plugin>/``.

    ``handler(request: InboundRequest, host: Host) -> InboundResponse``.  Plain
    functions keep plugins independent of the web framework.
    """

    path: str
    handler: Callable[..., Any]
    methods: tuple[str, ...] = ("POST",)
    description: str = ""


@attrs.frozen
class JobSpec:
    """Work a plugin runs in the background.

    With ``every_seconds`` the scheduler runs it periodically (a CRM poll);
    without, it runs when enqueued through ``host.enqueue(name, **kwargs)``.
    ``fn(host, **kwargs)`` does the work.
    """

    name: str
    fn: Callable[..., Any]
    every_seconds: float | None = None
    description: str = ""


@attrs.frozen
class InboundRequest:
    """A framework-neutral HTTP request handed to a plugin route."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    path_params: Mapping[str, str] = attrs.field(factory=dict)


@attrs.frozen
class InboundResponse:
    status: int = 200
    body: bytes | str = b""
    media_type: str = "text/plain"


@attrs.frozen
class Identity:
    """How a channel knows a customer: ``channel`` + ``external_id`` (+ staff)."""

    channel: str
    external_id: str
    staff_external_id: str | None = None


@attrs.frozen
class IngestEvent:
    """A normalized event a plugin hands to ``host.ingest``."""

    type: str
    identity: Identity
    idempotency_key: str
    occurred_at: str | None = None
    payload: Mapping[str, Any] = attrs.field(factory=dict)
    fields: Mapping[str, Any] = attrs.field(factory=dict)
    tags_add: tuple[str, ...] = ()
    tags_remove: tuple[str, ...] = ()
    display_name: str | None = None
    #: the acquisition source label (e.g. a live QR code's state); set once
    source: str | None = None


@attrs.frozen
class MigrationsSpec:
    """The Alembic revisions that create and evolve a plugin's own tables.

    ``directory`` holds ordinary Alembic revision files (``revision``,
    ``down_revision``, ``upgrade()``, ``downgrade()``; ``from alembic import op``).
    Core runs them as the plugin's own branch, recorded in its own version table
    ``alembic_version_<plugin>``, after core's migrations, whenever ``sopflow
    migrate`` (or an embedded start) runs.  ``metadata`` (an
    ``sqlalchemy.MetaData``, optional) describes the same tables, so the test
    kit can check that the revisions and the tables agree.
    """

    directory: str = attrs.field(converter=str)
    metadata: Any = None
    description: str = ""
