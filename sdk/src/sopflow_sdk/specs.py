"""The frozen records plugins register through ``register_*`` hooks.

Core owns the registry: it stamps each record with the registering plugin's name
and fails at startup on a duplicate, naming the item and both plugins.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Literal

import attrs

from sopflow_sdk.channel import Capabilities
from sopflow_sdk.settings_schema import SettingsSchema

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


#: The step type of stored definitions from before actions were step types:
#: ``{"type": "plugin", "action": <name>, "params": {...}}``.  Still read, never a name.
LEGACY_ACTION_TYPE = "plugin"


def _check_action_name(instance: Any, attribute: attrs.Attribute, value: str) -> None:
    _check_key(instance, attribute, value)
    if value == LEGACY_ACTION_TYPE:
        raise ValueError(
            f"ActionSpec.name={value!r} is reserved for the older step form; "
            "name the action after what it does, prefixed by the plugin ('crm.write_back')"
        )


@attrs.frozen
class ActionSpec:
    """Something an SOP step can do: a step type, ``{"type": <name>, ...params}``.

    ``run(context, params)`` does the work when the touch is delivered, after
    the delivery transaction; ``params`` is the step action without ``type``.
    ``params_schema`` is the JSON Schema of those params.  ``idempotent`` says
    ``run`` de-duplicates by ``context["idempotency_key"]``, so core may run it
    again after a crash; otherwise an interrupted step goes to ``review``.
    """

    name: str = attrs.field(validator=_check_action_name)
    run: Callable[..., Any] = attrs.field(validator=attrs.validators.is_callable())
    description: str = ""
    params_schema: Mapping[str, Any] = attrs.field(factory=dict)
    idempotent: bool = False


def _declared_capabilities(spec: ChannelSpec) -> Capabilities:
    declared = getattr(spec.factory, "capabilities", None)
    return declared if isinstance(declared, Capabilities) else Capabilities()


def _check_capabilities(instance: ChannelSpec, attribute: attrs.Attribute, value: Any) -> None:
    if not isinstance(value, Capabilities):
        raise TypeError(
            f"ChannelSpec {instance.name!r}: capabilities={value!r}; give a sopflow_sdk.Capabilities"
        )
    declared = getattr(instance.factory, "capabilities", None)
    if isinstance(declared, Capabilities) and declared != value:
        raise ValueError(
            f"ChannelSpec {instance.name!r} declares other capabilities than "
            f"{getattr(instance.factory, '__name__', 'its factory')}.capabilities; declare them once: "
            "on the Channel class, or on the ChannelSpec when the factory is a function"
        )


#: The keys of a ``send`` / ``remind_staff`` action core reads itself; a channel's
#: step parameters take other names.
SEND_ACTION_KEYS: tuple[str, ...] = ("type", "channel", "touchpoint", "text", "attachments", "forward")


def _check_step_params(instance: ChannelSpec, attribute: attrs.Attribute, value: Any) -> None:
    if not isinstance(value, SettingsSchema):
        raise TypeError(f"ChannelSpec {instance.name!r}: step_params={value!r}; give a SettingsSchema")
    clash = sorted(set(value.names) & set(SEND_ACTION_KEYS))
    if clash:
        raise ValueError(
            f"ChannelSpec {instance.name!r}: step parameter(s) {', '.join(clash)} clash with the send "
            f"action's own keys ({', '.join(SEND_ACTION_KEYS)}); name them after what they are ('subject')"
        )
    if value.secret_names:
        raise ValueError(
            f"ChannelSpec {instance.name!r}: step parameter(s) {', '.join(value.secret_names)} are secrets; "
            "SOP definitions are not encrypted: declare secrets in `settings` (the account's)"
        )


def _check_settings(instance: ChannelSpec, attribute: attrs.Attribute, value: Any) -> None:
    if value is not None and not isinstance(value, SettingsSchema):
        raise TypeError(
            f"ChannelSpec {instance.name!r}: settings={value!r}; give a SettingsSchema(Setting(...), ...)"
        )


@attrs.frozen
class ChannelSpec:
    """A touchpoint.  ``factory(config, secrets)`` builds a ``Channel`` instance.

    ``capabilities`` is what the engine plans with (touchpoints, attachment
    limit, caps, rate, idempotent send).  It defaults to the factory's
    ``Channel.capabilities``; give it when the factory is a function.

    ``settings`` declares an account's settings (``config``) and secrets:
    ``POST/PATCH /api/v1/channel-accounts`` refuse anything else with a 422
    listing every problem, and fill in defaults.  ``None`` (the default) takes
    any ``config``; the factory alone checks it.

    ``step_params`` declares the extra keys a ``send`` or ``remind_staff`` step
    on this channel may carry (an e-mail ``subject``); they are checked when an
    SOP is saved and reach ``send`` as ``OutboundMessage.params``.

    ``context=True``: core builds the channel as ``factory(config, secrets,
    context=ChannelContext(...))`` (the account id, the engine's clock, the
    database URL), for a channel that keeps shared state of its own.
    """

    name: str
    factory: Callable[..., Any]
    description: str = ""
    capabilities: Capabilities = attrs.field(
        default=attrs.Factory(_declared_capabilities, takes_self=True), validator=_check_capabilities
    )
    settings: SettingsSchema | None = attrs.field(default=None, validator=_check_settings, kw_only=True)
    step_params: SettingsSchema = attrs.field(
        factory=SettingsSchema, validator=_check_step_params, kw_only=True
    )
    context: bool = attrs.field(default=False, kw_only=True)


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
class ConsoleRequest:
    """What a console page's ``render`` is called with: the signed-in tenant,
    the page's language (``en`` or ``zh``), its query parameters, and whether
    the session may change things (an admin key)."""

    tenant_id: int
    lang: str
    query: Mapping[str, str]
    can_change: bool


def _check_console_path(instance: Any, attribute: attrs.Attribute, value: str) -> None:
    import re

    if not isinstance(value, str) or not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", value):
        raise ValueError(f"ConsolePage path {value!r}: one lower-case segment such as 'live-codes'")


@attrs.frozen
class ConsolePage:
    """A page a plugin adds to the operator console, at
    ``/console/plugins/<plugin>/<path>`` and in the console's menu; with
    ``panel_on`` (``"channels"``) it is also shown as a panel on that page.

    ``render(request: ConsoleRequest, host: Host) -> str`` returns an HTML
    fragment (no ``<html>``, no script: the console's policy refuses inline
    script); escape every value you put in it (``html.escape``).  It runs in a
    worker thread for each view; read with ``host.transaction(tenant_id)``.
    """

    path: str = attrs.field(validator=_check_console_path)
    title: str
    render: Callable[..., str]
    panel_on: str | None = None


def _check_function_name(instance: Any, attribute: attrs.Attribute, value: str) -> None:
    if not isinstance(value, str) or not value.isidentifier() or value.startswith("_"):
        raise ValueError(f"TemplateFunctionSpec name {value!r}: a Python identifier such as 'track'")


@attrs.frozen
class TemplateCall:
    """Who a template function renders for: the first argument of every call.

    ``accounts``: the tenant's channel accounts of the channels the registering
    plugin declares (as ``Host.channel_accounts`` gives them, secrets decrypted),
    so a function needs no I/O.  ``touch_id`` is ``None`` outside a touch."""

    tenant_id: int
    customer_id: int
    now: datetime
    accounts: tuple[Any, ...] = ()
    touch_id: int | None = None


@attrs.frozen
class TemplateFunctionSpec:
    """A function SOP message templates may call: ``{{ track("https://...") }}``.

    ``fn(call: TemplateCall, *args, **kwargs) -> str`` runs while a message is
    rendered for one customer; it must be quick and free of network calls (it is
    given ``timeout_seconds``, then the touch is skipped naming the function).
    """

    name: str = attrs.field(validator=_check_function_name)
    fn: Callable[..., Any] = attrs.field(validator=attrs.validators.is_callable())
    description: str = ""
    timeout_seconds: float = 0.5


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
class WorkerServiceSpec:
    """A long-lived task every worker process runs while it is up (a gateway's
    event-stream listener), next to the jobs it takes from the broker.

    ``run(host, stop)`` is called once in its own thread when the worker starts
    and must return soon after the ``threading.Event`` ``stop`` is set (the
    worker's shutdown): wait on ``stop.wait(seconds)``, never ``time.sleep``.
    Every worker process runs it, so what it does must be safe to do twice at
    once (idempotent ingest, a lease).  When it raises, core logs
    ``worker_service_failed`` and calls it again after ``restart_seconds``.
    """

    name: str
    run: Callable[..., Any] = attrs.field(validator=attrs.validators.is_callable())
    description: str = ""
    restart_seconds: float = 5.0


@attrs.frozen
class InboundRequest:
    """A framework-neutral HTTP request handed to a plugin route."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    path_params: Mapping[str, str] = attrs.field(factory=dict)
    #: the client's address as the server saw it (a proxy's, behind one)
    remote_addr: str = ""


@attrs.frozen
class InboundResponse:
    status: int = 200
    body: bytes | str = b""
    media_type: str = "text/plain"
    #: extra response headers (``Location`` of a redirect, ``Cache-Control``)
    headers: Mapping[str, str] = attrs.field(factory=dict)


@attrs.frozen
class Identity:
    """How a channel knows a customer: ``channel`` + ``external_id`` (+ staff)."""

    channel: str
    external_id: str
    staff_external_id: str | None = None


@attrs.frozen
class Relation:
    """One staff member following the customer on the event's channel (WeCom's
    ``follow_user`` item, a personal account's friend): ``added_at`` an ISO 8601
    instant, ``source`` how they were added (a live code's ``state``)."""

    staff_external_id: str
    added_at: str | None = None
    source: str | None = None
    remark: str | None = None


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
    #: keys that name the same person on every channel (``unionid``, ``phone``):
    #: an identity first seen lands on the customer who already holds one
    shared_identities: tuple[Identity, ...] = ()
    #: every staff member following the customer on ``identity.channel``
    relations: tuple[Relation, ...] = ()


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
