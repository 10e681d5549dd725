"""The channel side of delivery: the live channel for an account, rendering,
the messages a step sends, and the calls themselves.  Each action of a step is
prepared by the ``ActionSpec`` its name is registered under
(``engine.sops.step_actions``); the built-in ones use the helpers here.

``deliver`` decides *when* these run (inside or outside a transaction); this
module opens no transaction of its own (except ``channel_for`` called without
a session).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from sopflow_sdk import (
    SEND_ACTION_KEYS,
    AmbiguousSendError,
    Attachment,
    ChannelContext,
    DeferredError,
    FatalError,
    OutboundMessage,
    RetriableError,
    SendReceipt,
    SkippableError,
    SopflowError,
)

from sopflow.config_cache import cached, frozen_copy
from sopflow.engine.context import EngineContext
from sopflow.engine.customers.records import record_change
from sopflow.engine.delivery.template_functions import functions_for
from sopflow.engine.sops.step_actions import StepCall, StepPreparation, prepare_action
from sopflow.engine.sops.templates import render_bounded
from sopflow.logging import get_logger
from sopflow.models import ChannelAccount, ChannelIdentity, Customer, Enrollment, Event, Staff, Touch
from sopflow.models.touch_status import TouchStatus

log = get_logger("sopflow.deliver")


class Throttled(RetriableError):
    """The channel account's own rate limit (``Capabilities.rate_per_minute``) says wait."""


#: the built-in channels a tenant uses without connecting an account
NO_ACCOUNT = frozenset({"log", "manual"})


def channel_for(
    ctx: EngineContext, tenant_id: int, channel: str, session: Any = None, batch: dict[Any, Any] | None = None
) -> tuple[Any, int]:
    """The tenant's first account of ``channel`` as a live Channel (cached per
    account and secret, so a rotated secret takes effect).  ``batch`` remembers
    the answer for the rest of one delivery batch."""
    if session is None:
        with ctx.tx() as s:
            return channel_for(ctx, tenant_id, channel, s)
    if batch is not None:
        if (tenant_id, channel) not in batch:
            batch[tenant_id, channel] = channel_for(ctx, tenant_id, channel, session)
        return batch[tenant_id, channel]
    cache = ctx.channels
    query = (
        sa.select(ChannelAccount)
        .where(ChannelAccount.tenant_id == tenant_id, ChannelAccount.channel == channel)
        .order_by(ChannelAccount.id)
    )
    account = cached(
        session, tenant_id, ("channel_account", channel), lambda: frozen_copy(session.scalar(query))
    )
    if account is None:
        builtin = ctx.plugins.registry.get("register_channels", channel) if channel in NO_ACCOUNT else None
        if builtin is not None:  # the log and manual channels (built-in or replacements) need no account
            key = (tenant_id, channel)
            if key not in cache:
                cache[key] = builtin.spec.factory({}, {})
            return cache[key], 0
        raise SkippableError(
            f"tenant has no {channel} channel account; connect one with POST /api/v1/channel-accounts"
        )
    key = (account.id, account.secrets_ciphertext)
    if key not in cache:
        reg = ctx.plugins.registry.get("register_channels", channel)
        if reg is None:
            raise SkippableError(f"channel {channel!r} is not installed")
        extra = {}
        if reg.spec.context:  # the channel keeps shared state of its own (see ChannelContext)
            extra["context"] = ChannelContext(account.id, ctx.now, ctx.settings.database_url)
        secrets = ctx.credentials.open(account.secrets_ciphertext)
        cache[key] = reg.spec.factory(dict(account.config), secrets, **extra)
    return cache[key], account.id


def render(text: str, customer: Customer, staff_name: str, functions: Mapping[str, Any] | None = None) -> str:
    """``text`` (a Jinja template from a step) rendered for ``customer`` and their
    staff member, with the plugins' template ``functions`` (``template_functions``),
    within the template budget (``sops.templates``).  A template that fails for this
    customer fails the touch with the reason; nothing is sent."""
    try:
        return render_bounded(
            text,
            **(functions or {}),
            customer={"display_name": customer.display_name, "source": customer.source},
            fields=customer.fields,
            staff={"name": staff_name},
        )
    except SopflowError:  # a template function's own verdict (skip, retry) stands
        raise
    except Exception as exc:  # the template's fault, never the worker's: reported on the touch
        raise FatalError(f"the step's text cannot be rendered for this customer: {exc}") from None


@dataclass
class Outcome:
    """What the calls of one touch came to, for the record transaction."""

    touch_id: int
    status: TouchStatus  # the touch's next status
    results: list[dict[str, Any]] = field(default_factory=list)
    reason: str = ""
    retry_after: float | None = None
    throttled: bool = False  # our own limiter held it back before any call: not an attempt
    defer_reason: str = "rate_limit"
    account_id: int | None = None  # the channel account of the call that ended it (account health)


def call_sends(
    ctx: EngineContext, touch_id: int, sends: Sequence[StepCall], idempotent: bool, now: datetime
) -> Outcome:
    """Make the step's calls in order; the first failure stops the rest."""
    results: list[dict[str, Any]] = []
    status = TouchStatus.SENT
    retry_after: float | None = None
    reason = ""
    throttled = False
    defer_reason = "rate_limit"
    account_id: int | None = None
    for call in sends:
        account_id = call.message.get("account_id") or None  # None: a webhook, or the log channel
        try:
            receipt = call.call(ctx, call.action, call.message, now)
            results.append(
                {
                    "action": call.index,
                    "status": receipt.status,
                    "provider_ref": receipt.provider_ref,
                    **({"account_id": account_id} if account_id else {}),
                }
            )
            if receipt.status == "pending":
                status = TouchStatus.PENDING if status == TouchStatus.SENT else status
        except AmbiguousSendError as exc:
            status = TouchStatus.SCHEDULED if idempotent else TouchStatus.REVIEW
            reason = exc.internal_message
            break
        except RetriableError as exc:
            status, reason, retry_after = TouchStatus.SCHEDULED, exc.internal_message, exc.retry_after
            # held back before any call, by our limiter or the channel's own pacing
            throttled = isinstance(exc, Throttled | DeferredError) and not results
            if isinstance(exc, DeferredError):
                defer_reason = exc.reason
            break
        except SkippableError as exc:
            status, reason = TouchStatus.SKIPPED, exc.internal_message
            break
        except SopflowError as exc:
            status, reason = TouchStatus.FAILED, exc.internal_message
            break
        except Exception as exc:  # a channel bug must not lose the touch
            log.exception("channel_error", touch_id=touch_id)
            status = TouchStatus.SCHEDULED if idempotent else TouchStatus.REVIEW
            reason = f"{type(exc).__name__}: {exc}"
            break
    else:
        account_id = None  # every call went: no account to blame
    return Outcome(touch_id, status, results, reason, retry_after, throttled, defer_reason, account_id)


def send_message(
    ctx: EngineContext, action: Mapping[str, Any], message: dict[str, Any], now: datetime
) -> SendReceipt:
    """Send a prepared ``OutboundMessage`` under the account's rate limit."""
    channel, account_id = message["channel"], message["account_id"]
    limiter = ctx.limiter
    wait = limiter.wait_time(account_id, channel.capabilities.rate_per_minute, now.timestamp())
    if wait:
        raise Throttled("channel rate limit", retry_after=wait)
    return channel.send(message["outbound"])


def build_sends(
    ctx: EngineContext,
    s: Any,
    touch: Touch,
    step: Mapping[str, Any],
    customer: Customer,
    staff: Staff | None,
    fields: Mapping[str, Any],
    now: datetime,
    enrollment: Enrollment,
    identities: Sequence[tuple[str, str, str | None]] | None = None,
    channels: dict[Any, Any] | None = None,
) -> tuple[list[StepCall], bool]:
    """The step's calls, in order; each action is prepared by what registered it
    (data actions run here)."""
    prepared = StepPreparation(ctx, s, touch, customer, staff, fields, now, enrollment, identities, channels)
    for index, action in enumerate(step["actions"]):
        prepare_action(prepared, index, action)
    # one event for the step's data changes: journeys and plugins react to them
    record_change(
        s,
        customer,
        now,
        key=f"sop-action:{touch.id}",
        cause="sop_action",
        tags=prepared.tags,
        fields=prepared.changed_fields,
        depth=enrollment.depth + 1,
        sop_id=touch.sop_id,
        touch_id=touch.id,
    )
    return prepared.calls, prepared.idempotent


def to_staff(action: Mapping[str, Any]) -> bool:
    """Whether a step action is a notice to the customer's owner, not a send to them."""
    return action.get("type") == "remind_staff" or (
        action.get("type") == "send" and action.get("touchpoint") == "staff_notice"
    )


def prepare_send(step: StepPreparation, index: int, action: Mapping[str, Any]) -> None:
    """A ``send`` or ``remind_staff`` action: the rendered message for its channel."""
    ctx, s, touch, customer, staff = step.ctx, step.s, step.touch, step.customer, step.staff
    kind = action["type"]
    if to_staff(action) and staff is None:  # nobody to tell: not a send, and no daily slot used
        raise SkippableError("the customer has no owner to remind; give them one (owner_staff_external_id)")
    channel, account_id = channel_for(ctx, touch.tenant_id, action["channel"], s, step.channels)
    step.idempotent = step.idempotent and channel.capabilities.idempotent_send
    outbound = OutboundMessage(
        touchpoint=action.get("touchpoint", "staff_notice") if kind == "send" else "staff_notice",
        text=render(
            action["text"],
            customer,
            staff.name if staff else "",
            functions_for(ctx, s, touch.tenant_id, customer.id, touch.id, action["text"]),
        ),
        idempotency_key=f"touch:{touch.id}:{index}",
        recipient=recipient(
            s, customer, action["channel"], action.get("touchpoint"), step.now, step.identities
        ),
        attachments=tuple(
            Attachment(
                **{k: v for k, v in a.items() if k in ("kind", "url", "title", "description", "media_id")}
            )
            for a in action.get("attachments", [])
        ),
        staff_external_id=staff.external_id if staff else None,
        params={k: v for k, v in action.items() if k not in SEND_ACTION_KEYS},
    )
    channel.check(outbound)
    message = {"tenant_id": touch.tenant_id, "outbound": outbound}
    step.calls.append(
        StepCall(index, action, {**message, "channel": channel, "account_id": account_id}, send_message)
    )


def prepare_webhook(step: StepPreparation, index: int, action: Mapping[str, Any]) -> None:
    """A webhook step needs nothing prepared; only whether it may be retried."""
    # a receiver that de-duplicates by Idempotency-Key may be retried after a crash
    step.idempotent = step.idempotent and bool(action.get("idempotent"))
    touch = step.touch
    message = {
        "tenant_id": touch.tenant_id,
        "touch_id": touch.id,
        "customer_id": step.customer.id,
        "outbound": None,
    }
    step.calls.append(StepCall(index, action, message, call_webhook))


#: How long a welcome code from a ``customer.added`` event stays usable (WeCom: 20 s).
WELCOME_WINDOW = timedelta(seconds=20)


def identities_of(s: Any, customer_ids: Sequence[int]) -> dict[int, list[tuple[str, str, str | None]]]:
    """Customer id → (channel, external id, staff user id) of each identity, oldest first."""
    out: dict[int, list[tuple[str, str, str | None]]] = {}
    rows = s.execute(
        sa.select(
            ChannelIdentity.customer_id,
            ChannelIdentity.channel,
            ChannelIdentity.external_id,
            Staff.external_id,
        )
        .outerjoin(Staff, Staff.id == ChannelIdentity.staff_id)
        .where(ChannelIdentity.customer_id.in_(customer_ids))
        .order_by(ChannelIdentity.id)
    )
    for customer_id, channel, external_id, staff_userid in rows:
        out.setdefault(customer_id, []).append((channel, external_id, staff_userid))
    return out


def recipient(
    s: Any,
    customer: Customer,
    channel: str,
    touchpoint: str | None = None,
    now: datetime | None = None,
    identities: Sequence[tuple[str, str, str | None]] | None = None,
) -> dict[str, Any]:
    """Who to reach: every identity, plus the one on this channel (and the staff
    member it belongs to) as ``external_id`` / ``staff_external_id``, the names
    ``Identity`` uses (``staff_userid`` is the older name of the latter, kept); for the
    ``welcome`` touchpoint, the welcome code of a ``customer.added`` event from
    the last 20 s (``None`` when there is none: the channel skips the send)."""
    rows = identities if identities is not None else identities_of(s, [customer.id]).get(customer.id, [])
    out: dict[str, Any] = {
        "customer_id": customer.id,
        "identities": [
            {"channel": c, "external_id": e, "staff_external_id": st, "staff_userid": st} for c, e, st in rows
        ],
    }
    for c, e, st in rows:
        if c == channel:
            out.update(external_id=e, staff_external_id=st, staff_userid=st)
            break
    if touchpoint == "welcome" and now is not None:
        added = s.execute(
            sa.select(Event.payload, Event.occurred_at)
            .where(
                Event.customer_id == customer.id,
                Event.type == "customer.added",
                Event.occurred_at >= now - WELCOME_WINDOW,
            )
            .order_by(Event.occurred_at.desc(), Event.id.desc())
            .limit(1)
        ).first()
        out["welcome_code"] = (added[0] or {}).get("welcome_code") if added else None
    return out


_http: tuple[int, httpx.Client] | None = None
_http_lock = threading.Lock()


def _client() -> httpx.Client:
    """One pooled client per process: a new client per call loaded the TLS
    context every time (most of a webhook send's CPU).  Made lazily, after any
    fork, so worker processes never share sockets."""
    global _http
    with _http_lock:
        if _http is None or _http[0] != os.getpid():
            _http = (os.getpid(), httpx.Client(timeout=10))
        return _http[1]


def call_webhook(
    ctx: EngineContext, action: Mapping[str, Any], message: Mapping[str, Any], now: datetime
) -> SendReceipt:
    """POST the touch to the step's URL, keyed by the touch for receivers that de-duplicate."""
    try:
        r = _client().post(
            action["url"],
            json={"touch_id": message["touch_id"], "customer_id": message["customer_id"]},
            headers={"Idempotency-Key": f"touch:{message['touch_id']}"},
        )
    except httpx.TimeoutException as exc:
        raise AmbiguousSendError("webhook timed out") from exc
    except httpx.HTTPError as exc:
        raise RetriableError(f"webhook failed: {type(exc).__name__}", retry_after=60) from exc
    if r.status_code >= 500 or r.status_code == 429:
        raise RetriableError(f"webhook answered {r.status_code}", retry_after=60)
    if r.status_code >= 400:
        raise SkippableError(f"webhook answered {r.status_code}")
    return SendReceipt("sent")
