"""The ``Channel`` base class: a touchpoint with declared capabilities.

A channel says what it can do as class attributes, the way llm's ``Model`` does;
the engine plans around the declaration (caps, rate limits, confirmation) instead
of discovering limits by failing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, ClassVar, Literal, get_args

import attrs

from sopflow_sdk.errors import UnsupportedCapabilityError

Touchpoint = Literal["private_chat", "group_chat", "moments", "welcome", "staff_notice"]
#: Every touchpoint a channel may declare, in the order the docs list them.
TOUCHPOINTS: tuple[str, ...] = get_args(Touchpoint)

AttachmentKind = Literal["image", "link", "miniprogram", "video", "file"]
#: What a message may carry besides its text.
ATTACHMENT_KINDS: tuple[str, ...] = get_args(AttachmentKind)
#: The most attachments any message may carry (a channel may declare fewer).
MAX_ATTACHMENTS = 9


CapPeriod = Literal["day", "week", "month"]
#: The periods a customer cap may count over (local day, ISO week from Monday, calendar month).
CAP_PERIODS: tuple[str, ...] = get_args(CapPeriod)


def _check_period(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value not in CAP_PERIODS:
        raise ValueError(
            f"CustomerCap(period={value!r}): the engine counts pushes per customer per local "
            f"{', '.join(CAP_PERIODS)}; declare one of those, e.g. CustomerCap(count, 'day')"
        )


@attrs.frozen
class CustomerCap:
    """At most ``count`` counted pushes (private-chat sends, forwarded staff
    reminders) to one customer per ``period``, on any channel, while a step on
    this channel is due; the engine defers the rest to the next period.

    ``period`` is the customer's local ``"day"``, ISO ``"week"`` (Monday to
    Sunday) or calendar ``"month"``, in the enrolment's time zone (the
    customer's, else the tenant's).  A touch held back by a weekly or monthly
    cap waits for the first day of the next period at its planned local time."""

    count: int
    period: CapPeriod = attrs.field(default="day", validator=_check_period)


@attrs.frozen
class Capabilities:
    """What a channel can do; the engine plans around it (see docs/plugin-hooks.md)."""

    touchpoints: frozenset[str] = frozenset({"private_chat"})
    max_attachments: int = MAX_ATTACHMENTS
    needs_staff_confirmation: bool = False
    idempotent_send: bool = False
    rate_per_minute: int | None = None
    customer_cap: CustomerCap | None = None


@attrs.frozen
class Attachment:
    kind: AttachmentKind
    url: str = ""
    title: str = ""
    description: str = ""
    media_id: str = ""


@attrs.frozen
class OutboundMessage:
    """What the engine asks a channel to send.

    ``idempotency_key`` is unique per touch: a channel that supports idempotent
    sends passes it to the provider so a retry cannot deliver twice.
    ``recipient`` says who to reach, in ``Identity``'s words: ``customer_id``,
    ``identities`` (each ``channel``, ``external_id``, ``staff_external_id``), and
    the identity on this channel as ``external_id`` / ``staff_external_id``.
    ``params`` are the step's parameters the channel declares in
    ``ChannelSpec.step_params`` (checked when the SOP was saved, defaults filled in).
    """

    touchpoint: str
    text: str
    idempotency_key: str
    recipient: Mapping[str, Any] = attrs.field(factory=dict)
    attachments: tuple[Attachment, ...] = ()
    staff_external_id: str | None = None
    params: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class ChannelContext:
    """What core hands a factory whose ``ChannelSpec`` says ``context=True``: the
    account's id, the engine's clock (the manual clock in tests and the demo) and
    the deployment's database URL, for a channel that keeps shared state of its
    own (a pacing ledger every worker process reads) in its plugin's tables."""

    account_id: int
    now: Callable[[], datetime]
    database_url: str


@attrs.frozen
class SendReceipt:
    """The result of a send.  ``status`` is ``sent`` when delivered, ``pending``
    when the provider needs confirmation (then ``provider_ref`` is polled)."""

    status: Literal["sent", "pending"]
    provider_ref: str | None = None
    detail: Mapping[str, Any] = attrs.field(factory=dict)


class Channel:
    """Base class for channels.  Subclasses set ``name`` and ``capabilities`` and
    implement ``send``; ``notify_staff``, ``poll`` and ``cancel`` are optional."""

    name: ClassVar[str] = ""
    capabilities: ClassVar[Capabilities] = Capabilities()

    def check(self, message: OutboundMessage) -> None:
        """Raise ``UnsupportedCapabilityError`` if ``message`` needs something undeclared."""
        if message.touchpoint not in self.capabilities.touchpoints:
            raise UnsupportedCapabilityError(self.name, message.touchpoint)
        if len(message.attachments) > self.capabilities.max_attachments:
            raise UnsupportedCapabilityError(self.name, f"{len(message.attachments)} attachments")

    def send(self, message: OutboundMessage) -> SendReceipt:
        raise UnsupportedCapabilityError(self.name, message.touchpoint)

    def poll(self, provider_ref: str) -> Mapping[str, str]:
        """For channels needing confirmation: map of recipient → ``sent``/``failed``/``pending``."""
        raise UnsupportedCapabilityError(self.name, "poll")

    def cancel(self, provider_ref: str) -> bool:
        """For channels needing confirmation: stop a send still waiting for staff
        (its customer moved to another staff member); ``True`` when the channel
        stopped it.  Core asks after ``poll`` said it was not sent; the default
        (``False``) leaves the task to the channel, which must then refuse to deliver
        it to a customer who left its sender."""
        return False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} channel={self.name!r}>"
