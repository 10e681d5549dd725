"""What core offers a plugin at run time: the ``Host`` protocol.

Plugin routes and jobs receive a host; they never import core.  The host
ingests events, reads channel accounts (with decrypted secrets), tells the time
through the injected clock, enqueues plugin jobs, and keeps the plugin's own
state (``state``, ``transaction``: see ``sopflow_sdk.state``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol

from sopflow_sdk.specs import FieldSpec, IngestEvent
from sopflow_sdk.state import PluginState, PluginTransaction


class ChannelAccountView(Protocol):
    id: int
    tenant_id: int
    channel: str
    name: str
    config: Mapping[str, Any]
    secrets: Mapping[str, Any]  # values are sopflow_sdk.Secret


class IdentityView(Protocol):
    channel: str
    external_id: str
    staff_external_id: str | None  # the staff member this identity belongs to (WeCom: userid)


class CustomerView(Protocol):
    """A read-only copy of one customer, as ``Host.customer`` gives it."""

    id: int
    tenant_id: int
    display_name: str
    source: str | None
    fields: Mapping[str, Any]
    tags: frozenset[str]
    identities: Sequence[IdentityView]
    churned: bool


class FieldView(Protocol):
    """One customer field as ``Host.fields`` gives it."""

    key: str
    type: str  # one of sopflow_sdk.FIELD_TYPES
    label: str
    choices: tuple[str, ...]
    description: str
    read_only: bool  # a plugin's field: written only by its plugin


class Host(Protocol):
    def now(self) -> datetime: ...

    def customer(self, tenant_id: int, customer_id: int) -> CustomerView | None:
        """The customer now, or ``None`` when unknown (or the plugin is off for the tenant)."""
        ...

    def customer_overview(self, tenant_id: int, channel: str, external_id: str) -> Mapping[str, Any] | None:
        """The tenant's customer holding the identity ``channel``/``external_id`` at a
        glance, for a page beside a chat: ``customer_id``; ``stages`` (pipeline name →
        stage name); ``sops``, the active enrolments (``enrollment_id``, ``sop_id``,
        ``sop``, ``enrolled_at``); ``touches`` due by the end of the tenant's day and
        not yet final (``id``, ``sop``, ``step_index``, ``status``, ``due_at``, overdue
        ones included).  ``None`` when no customer of the tenant holds the identity."""
        ...

    def confirm_touches(
        self, tenant_id: int, touch_ids: Sequence[int], *, tap: str | None = None, staff: str | None = None
    ) -> Mapping[int, str]:
        """Ask the channels now whether these touches awaiting staff confirmation
        (``pending``: a WeCom mass send the member sends from the chat, a ``manual``
        send) were sent, through the engine's own confirmation path, so each moves
        once; the tenant's touches among ``touch_ids`` and their status after (still
        ``pending`` when the channel has not seen the send).  ``tap`` is the member
        ``staff``'s answer, recorded once per touch: ``"sent"`` (a ``manual`` touch
        is then sent; a WeCom one still waits for WeCom's word) or ``"skip"`` (a
        send that did not go out is cancelled through the channel's ``cancel`` and
        the touch ends ``skipped``, reason ``skipped_by_staff``)."""
        ...

    def edit_customer(
        self,
        tenant_id: int,
        channel: str,
        external_id: str,
        fields: Mapping[str, str],
        add_tags: Sequence[str] = (),
        remove_tags: Sequence[str] = (),
        *,
        staff: str,
    ) -> Mapping[str, str]:
        """Edit the tenant's customer holding ``channel``/``external_id`` as the
        console does: ``fields`` maps a field's key to its typed text (a number's
        digits, ``true``/``false``, a multi-choice's comma-separated choices, empty
        to clear), validated as the API validates, audited as a ``customer.updated``
        event whose actor is ``staff``.  Returns the problems by field (``tags`` for
        a tag), each naming the fix; with any problem nothing is changed; ``{}``
        when saved."""
        ...

    def ingest(self, tenant_id: int, events: Sequence[IngestEvent]) -> list[dict[str, Any]]: ...

    def fields(self, tenant_id: int) -> Mapping[str, FieldView]:
        """Every customer field of the tenant (its own and the plugins'), by key, so a
        plugin can build or check input against the types and choices."""
        ...

    def channel_accounts(self, channel: str) -> list[ChannelAccountView]: ...

    def channel_account(self, account_id: int) -> ChannelAccountView | None: ...

    def enqueue(self, job: str, **kwargs: Any) -> None: ...

    def staff_left(self, tenant_id: int, staff_external_id: str, left: bool = True) -> bool:
        """Mark the staff member (by their channel id, created when unknown) as having
        left the company (``left=False``: back).  While left, their customers' touches
        are held until a ``customer.transferred`` event moves each customer; returns
        whether anything changed."""
        ...

    def notify_staff(
        self, tenant_id: int, channel: str, staff_external_id: str, text: str, *, key: str
    ) -> bool:
        """Tell a staff member something they must act on (an account the platform
        restricted, an archive that stopped), as a ``staff_notice`` through the
        tenant's ``channel`` account (WeCom: an app message to the member
        ``staff_external_id``).  Once per ``key``: a key already used sends
        nothing and returns ``False``; so does a notice the channel could not
        deliver (logged with the reason, never raised: the caller's own work
        goes on).  ``True`` when it went out.  Call it outside ``transaction()``."""
        ...

    def define_fields(self, tenant_id: int, specs: Sequence[FieldSpec]) -> list[str]:
        """Define tenant fields at run time (a CRM mapping contributes the fields it maps):
        those of ``specs`` that do not exist yet are created and their keys returned;
        ``ConfigError`` naming each key that exists with another type, and nothing created."""
        ...

    def authenticate(self, headers: Mapping[str, str], scope: str) -> int | None:
        """The tenant id of a valid ``Authorization: Bearer <api key>`` holding ``scope``
        (``admin`` holds every scope), for plugin routes that act for a tenant
        rather than answer a signed webhook.  ``None`` when the key is missing or
        unknown (answer 401); raises ``ScopeError`` when it lacks the scope or the
        plugin is off for its tenant (core answers 403 with a problem body)."""
        ...

    def state(self, tenant_id: int) -> PluginState:
        """This plugin's key-value state for ``tenant_id`` (cursors, watermarks);
        each call on it is its own transaction.  Raises ``FatalError`` when the
        plugin is disabled for the tenant."""
        ...

    def transaction(self, tenant_id: int) -> AbstractContextManager[PluginTransaction]:
        """``with host.transaction(tenant_id) as tx:`` — ingest (``tx.ingest``), state
        (``tx.state``) and the plugin's own tables (``tx.connection``) commit together
        when the block ends, or roll back together if it raises.  New events are
        announced (``on_event``) and evaluated after the commit.  Inside the block use
        ``tx``, not ``host.ingest`` / ``host.state`` (they would open a second
        transaction; the host refuses)."""
        ...
