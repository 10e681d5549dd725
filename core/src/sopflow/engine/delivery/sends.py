"""The channel side of delivery: the live channel for an account, rendering,
the messages a step sends (and its data actions), and the calls themselves.

``deliver`` decides *when* these run (inside or outside a transaction); this
module opens no transaction of its own (except ``channel_for`` called without
a session).
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from sopflow_sdk import (
    AmbiguousSendError,
    Attachment,
    OutboundMessage,
    RetriableError,
    SendReceipt,
    SkippableError,
    SopflowError,
)

from sopflow.engine.context import EngineContext
from sopflow.engine.customers.fields import apply_stored, to_storage
from sopflow.engine.customers.records import TagChange, change_tags, record_change
from sopflow.engine.journeys.pipelines import get_stage, move_customer
from sopflow.engine.sops.definition import templates
from sopflow.logging import get_logger
from sopflow.models import ChannelAccount, ChannelIdentity, Customer, Enrollment, Event, Staff, Touch
from sopflow.models.touch_status import TouchStatus

log = get_logger("sopflow.deliver")


class Throttled(RetriableError):
    """The channel account's own rate limit (``Capabilities.rate_per_minute``) says wait."""


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
    account = session.scalar(
        sa.select(ChannelAccount)
        .where(ChannelAccount.tenant_id == tenant_id, ChannelAccount.channel == channel)
        .order_by(ChannelAccount.id)
    )
    if account is None:
        if channel == "log":  # the built-in log channel needs no account
            key = (tenant_id, "log")
            if key not in cache:
                cache[key] = ctx.plugins.registry.get("register_channels", "log").spec.factory({}, {})
            return cache[key], 0
        raise SkippableError(
            f"tenant has no {channel} channel account; connect one with POST /api/v1/channel-accounts"
        )
    key = (account.id, account.secrets_ciphertext)
    if key not in cache:
        reg = ctx.plugins.registry.get("register_channels", channel)
        if reg is None:
            raise SkippableError(f"channel {channel!r} is not installed")
        cache[key] = reg.spec.factory(dict(account.config), ctx.credentials.open(account.secrets_ciphertext))
    return cache[key], account.id


@functools.lru_cache(maxsize=1024)
def _compiled(text: str) -> Any:
    return templates.from_string(text)  # compiling a template costs more than rendering it


def render(text: str, customer: Customer, staff_name: str) -> str:
    """``text`` (a Jinja template from a step) rendered for ``customer`` and their staff member."""
    return _compiled(text).render(
        customer={"display_name": customer.display_name, "source": customer.source},
        fields=customer.fields,
        staff={"name": staff_name},
    )


@dataclass
class Outcome:
    """What the calls of one touch came to, for the record transaction."""

    touch_id: int
    status: TouchStatus  # the touch's next status
    results: list[dict[str, Any]] = field(default_factory=list)
    reason: str = ""
    retry_after: float | None = None
    throttled: bool = False  # our own limiter held it back before any call: not an attempt


def call_sends(
    ctx: EngineContext, touch_id: int, sends: Sequence[Any], idempotent: bool, now: datetime
) -> Outcome:
    """Make the step's calls in order; the first failure stops the rest."""
    results: list[dict[str, Any]] = []
    status = TouchStatus.SENT
    retry_after: float | None = None
    reason = ""
    throttled = False
    for action_index, action, message in sends:
        try:
            if action["type"] == "webhook":
                receipt = _webhook(action, message)
            elif action["type"] == "plugin":
                receipt = _plugin_action(ctx, action, message)
            else:
                channel, account_id = message["channel"], message["account_id"]
                limiter = ctx.limiter
                wait = limiter.wait_time(account_id, channel.capabilities.rate_per_minute, now.timestamp())
                if wait:
                    raise Throttled("channel rate limit", retry_after=wait)
                receipt = channel.send(message["outbound"])
            results.append(
                {"action": action_index, "status": receipt.status, "provider_ref": receipt.provider_ref}
            )
            if receipt.status == "pending":
                status = TouchStatus.PENDING if status == TouchStatus.SENT else status
        except AmbiguousSendError as exc:
            status = TouchStatus.SCHEDULED if idempotent else TouchStatus.REVIEW
            reason = exc.internal_message
            break
        except RetriableError as exc:
            status, reason, retry_after = TouchStatus.SCHEDULED, exc.internal_message, exc.retry_after
            throttled = isinstance(exc, Throttled) and not results
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
    return Outcome(touch_id, status, results, reason, retry_after, throttled)


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
) -> tuple[list[Any], bool]:
    """The step's sends as (action index, action, message), and whether all of them
    may be re-sent safely; data actions run here.
    Long because it walks the step's actions in order, one branch per action kind."""
    sends = []
    idempotent = True
    tags, changed_fields = TagChange(), {}
    for index, action in enumerate(step["actions"]):
        kind = action["type"]
        if kind in ("send", "remind_staff"):
            channel, account_id = channel_for(ctx, touch.tenant_id, action["channel"], s, channels)
            idempotent = idempotent and channel.capabilities.idempotent_send
            outbound = OutboundMessage(
                touchpoint=action.get("touchpoint", "staff_notice") if kind == "send" else "staff_notice",
                text=render(action["text"], customer, staff.name if staff else ""),
                idempotency_key=f"touch:{touch.id}:{index}",
                recipient=recipient(
                    s, customer, action["channel"], action.get("touchpoint"), now, identities
                ),
                attachments=tuple(
                    Attachment(
                        **{
                            k: v
                            for k, v in a.items()
                            if k in ("kind", "url", "title", "description", "media_id")
                        }
                    )
                    for a in action.get("attachments", [])
                ),
                staff_external_id=staff.external_id if staff else None,
            )
            channel.check(outbound)
            message = {"tenant_id": touch.tenant_id, "outbound": outbound}
            sends.append((index, action, {**message, "channel": channel, "account_id": account_id}))
        elif kind == "plugin":
            idempotent = False  # a plugin action may have side effects: a human reviews a crash
            sends.append(
                (
                    index,
                    action,
                    {
                        "tenant_id": touch.tenant_id,
                        "touch_id": touch.id,
                        "customer_id": customer.id,
                        "customer": {
                            "display_name": customer.display_name,
                            "source": customer.source,
                            "fields": dict(customer.fields),
                        },
                        "idempotency_key": f"touch:{touch.id}:{index}",
                        "outbound": None,
                    },
                )
            )
        elif kind == "webhook":
            # a receiver that de-duplicates by Idempotency-Key may be retried after a crash
            idempotent = idempotent and bool(action.get("idempotent"))
            sends.append(
                (
                    index,
                    action,
                    {
                        "tenant_id": touch.tenant_id,
                        "touch_id": touch.id,
                        "customer_id": customer.id,
                        "outbound": None,
                    },
                )
            )
        else:
            change = data_action(s, customer, action, fields, now, enrollment)
            if change is not None:
                tags = TagChange(
                    tuple(sorted(set(tags.added) | set(change[0].added))),
                    tuple(sorted(set(tags.removed) | set(change[0].removed))),
                )
                changed_fields.update(change[1])
    # one event for the step's data changes: journeys and plugins react to them
    record_change(
        s,
        customer,
        now,
        key=f"sop-action:{touch.id}",
        cause="sop_action",
        tags=tags,
        fields=changed_fields,
        depth=enrollment.depth + 1,
        sop_id=touch.sop_id,
        touch_id=touch.id,
    )
    return sends, idempotent


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
    member it belongs to) as ``external_id`` / ``staff_userid``; for the
    ``welcome`` touchpoint, the welcome code of a ``customer.added`` event from
    the last 20 s (``None`` when there is none: the channel skips the send)."""
    rows = identities if identities is not None else identities_of(s, [customer.id]).get(customer.id, [])
    out: dict[str, Any] = {
        "customer_id": customer.id,
        "identities": [{"channel": c, "external_id": e, "staff_userid": st} for c, e, st in rows],
    }
    for c, e, st in rows:
        if c == channel:
            out.update(external_id=e, staff_userid=st)
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


def data_action(
    s: Any,
    customer: Customer,
    action: Mapping[str, Any],
    fields: Mapping[str, Any],
    now: datetime,
    enrollment: Enrollment,
) -> tuple[TagChange, dict[str, Any]] | None:
    """Apply one data action; returns the tag and field changes it made."""
    kind = action["type"]
    if kind == "set_field":
        stored = {action["field"]: to_storage(fields[action["field"]], action["value"])}
        before = dict(customer.fields or {})
        customer.fields = apply_stored(customer.fields, stored)
        return TagChange(), {k: v for k, v in stored.items() if before.get(k) != v}
    if kind in ("add_tag", "remove_tag"):
        key = "add" if kind == "add_tag" else "remove"
        return change_tags(s, customer, **{key: [action["tag"]]}), {}
    if kind == "move_stage":
        move_customer(
            s,
            customer.tenant_id,
            customer.id,
            get_stage(s, customer.tenant_id, action["stage_id"]),
            "rule",
            now,
            depth=enrollment.depth + 1,
        )
    return None


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


def _webhook(action: Mapping[str, Any], message: Mapping[str, Any]) -> Any:
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


def _plugin_action(ctx: EngineContext, action: Mapping[str, Any], message: dict[str, Any]) -> SendReceipt:
    """Run a plugin's ``ActionSpec``: ``run(context, params)``; a returned
    ``SendReceipt`` is kept, anything else counts as done."""
    reg = ctx.plugins.registry.get("register_actions", action["action"])
    if reg is None:
        raise SkippableError(f"plugin action {action['action']!r} is no longer installed")
    context = {k: v for k, v in message.items() if k != "outbound"}
    result = reg.spec.run(context, dict(action.get("params") or {}))
    return result if isinstance(result, SendReceipt) else SendReceipt("sent")
